//! Field-level checks shared by every endpoint. Nothing here panics on any input.

use serde_json::{Map, Value};

use crate::codes::{Reject, ResCode};

/// A parsed JSON object request body.
pub(crate) type Object = Map<String, Value>;

/// Parses a body that must be a JSON object (`V001` otherwise).
pub(crate) fn parse_object(body: &[u8]) -> Result<Object, Reject> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reject::new(
            ResCode::V001,
            "request body must be a JSON object",
        )),
        Err(e) => Err(Reject::new(
            ResCode::V001,
            format!("request body is not valid JSON ({})", e.classify_name()),
        )),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}

/// Whether `c` may not appear in any field value: `'` `"` `<` `>` `\` `;` `|`
/// `&`, any control character (CR, LF, tab, C0, DEL, C1) and emoji.
pub(crate) fn is_forbidden_char(c: char) -> bool {
    matches!(c, '\'' | '"' | '<' | '>' | '\\' | ';' | '|' | '&') || c.is_control() || is_emoji(c)
}

/// The emoji the sandbox rejects: the pictographic blocks U+1F000..U+1FAFF,
/// Miscellaneous Symbols and Dingbats U+2600..U+27BF, U+2B00..U+2BFF, the
/// emoji watch/hourglass U+231A..U+231B and media symbols U+23E9..U+23FA, variation selectors
/// U+FE00..U+FE0F, ZERO WIDTH JOINER, the keycap combiner U+20E3 and the tag
/// characters U+E0000..U+E007F.
pub(crate) fn is_emoji(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1FAFF
            | 0x2600..=0x27BF
            | 0x2B00..=0x2BFF
            | 0x231A..=0x231B
            | 0x23E9..=0x23FA
            | 0xFE00..=0xFE0F
            | 0x200D
            | 0x20E3
            | 0xE0000..=0xE007F
    )
}

/// Rejects any string value (at any depth) holding a forbidden character (`V003`).
pub(crate) fn check_forbidden(obj: &Object) -> Result<(), Reject> {
    fn walk(v: &Value, path: &str) -> Result<(), Reject> {
        match v {
            Value::String(s) => match s.chars().find(|c| is_forbidden_char(*c)) {
                Some(c) => Err(Reject::new(
                    ResCode::V003,
                    format!(
                        "{path} contains a forbidden character (U+{:04X})",
                        u32::from(c)
                    ),
                )),
                None => Ok(()),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(item, &child)?;
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    for (k, v) in obj {
        walk(v, k)?;
    }
    Ok(())
}

/// A field's value, treating JSON `null` as absent.
fn get<'a>(obj: &'a Object, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

/// A required, non-empty string of at most `max` UTF-8 bytes.
pub(crate) fn req_str<'a>(obj: &'a Object, name: &str, max: usize) -> Result<&'a str, Reject> {
    match opt_str(obj, name, max)? {
        Some("") => Err(Reject::new(
            ResCode::V001,
            format!("{name} is required and must not be empty"),
        )),
        Some(s) => Ok(s),
        None => Err(Reject::new(ResCode::V001, format!("{name} is required"))),
    }
}

/// An optional string of at most `max` UTF-8 bytes.
pub(crate) fn opt_str<'a>(
    obj: &'a Object,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, Reject> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > max {
                Err(Reject::new(
                    ResCode::V002,
                    format!(
                        "{name} is {} bytes in UTF-8; the limit is {max} bytes",
                        s.len()
                    ),
                ))
            } else {
                Ok(Some(s.as_str()))
            }
        }
        Some(_) => Err(Reject::new(
            ResCode::V001,
            format!("{name} must be a JSON string"),
        )),
    }
}

/// An optional `"Y"` / `"N"` flag (`V002` when longer than 1 byte).
pub(crate) fn opt_flag(obj: &Object, name: &str) -> Result<Option<bool>, Reject> {
    match opt_str(obj, name, 1)? {
        None => Ok(None),
        Some("Y") => Ok(Some(true)),
        Some("N") => Ok(Some(false)),
        Some(_) => Err(Reject::new(
            ResCode::V001,
            format!("{name} must be \"Y\" or \"N\""),
        )),
    }
}

/// An optional nested object (`V001` when present but not an object).
pub(crate) fn opt_object<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a Object>, Reject> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Reject::new(
            ResCode::V001,
            format!("{name} must be a JSON object"),
        )),
    }
}

/// An optional amount: a JSON integer (no fraction, no string) that is
/// positive, or non-negative when `allow_zero` (`V005` otherwise).
pub(crate) fn opt_amount(
    obj: &Object,
    name: &str,
    allow_zero: bool,
) -> Result<Option<u64>, Reject> {
    let rule = if allow_zero {
        "a non-negative integer"
    } else {
        "a positive integer"
    };
    match get(obj, name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) if !allow_zero => Err(Reject::new(
                ResCode::V005,
                format!("{name} must be {rule} in minor units, got 0"),
            )),
            Some(v) => Ok(Some(v)),
            None => Err(Reject::new(
                ResCode::V005,
                format!(
                    "{name} must be {rule} in minor units (no fractions, no negatives), got {n}"
                ),
            )),
        },
        Some(Value::String(_)) => Err(Reject::new(
            ResCode::V005,
            format!("{name} must be a JSON number ({rule} in minor units), not a string"),
        )),
        Some(_) => Err(Reject::new(
            ResCode::V005,
            format!("{name} must be {rule} in minor units"),
        )),
    }
}

/// Requires a `cancelReqDate` of the form `yyyyMMdd` naming a real date
/// (`V006`); returns its day number.
pub(crate) fn cancel_req_date_day(date: &str) -> Result<i64, Reject> {
    crate::clock::parse_yyyymmdd(date).ok_or_else(|| {
        Reject::new(
            ResCode::V006,
            "cancelReqDate must be a real date written yyyyMMdd",
        )
    })
}

/// A string value of the request to echo in the response, if it is one.
pub(crate) fn echo<'a>(obj: &'a Object, name: &str) -> Option<&'a str> {
    match obj.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => Object::new(),
        }
    }

    #[test]
    fn forbidden_characters() {
        for c in [
            '\'', '"', '<', '>', '\\', ';', '|', '&', '\r', '\n', '\t', '\0', '\u{7f}',
        ] {
            assert!(is_forbidden_char(c), "{c:?}");
        }
        for c in [
            '😀', '❤', '⭐', '★', '\u{FE0F}', '\u{200D}', '🇰', '⌚', '⏰',
        ] {
            assert!(is_forbidden_char(c), "{c:?}");
        }
        for c in [
            'a', 'Z', '0', ' ', '-', '_', '.', ':', '/', '?', '=', '가', '힣', '中', 'é', '⌘', '→',
        ] {
            assert!(!is_forbidden_char(c), "{c:?}");
        }
    }

    #[test]
    fn forbidden_scan_names_nested_field() {
        let o = obj(json!({"a": "ok", "basketInfo": {"sellerId": "x;y"}}));
        let r = check_forbidden(&o).unwrap_err();
        assert_eq!(r.code, ResCode::V003);
        assert!(r.msg.contains("basketInfo.sellerId"), "{}", r.msg);
    }

    #[test]
    fn byte_lengths_count_utf8() {
        // "가" is 3 bytes: 20 syllables are 60 bytes, 21 are 63.
        let at = "가".repeat(20);
        let over = "가".repeat(21);
        let o = obj(json!({"k": at, "o": over}));
        assert_eq!(req_str(&o, "k", 60).unwrap().len(), 60);
        assert_eq!(req_str(&o, "o", 60).unwrap_err().code, ResCode::V002);
    }

    #[test]
    fn amounts_must_be_integers() {
        let o = obj(json!({"a": 5, "z": 0, "f": 12.5, "g": 12.0, "s": "5", "n": -1, "b": true}));
        assert_eq!(opt_amount(&o, "a", false).unwrap(), Some(5));
        assert_eq!(opt_amount(&o, "missing", false).unwrap(), None);
        assert_eq!(opt_amount(&o, "z", true).unwrap(), Some(0));
        for bad in ["z", "f", "g", "s", "n", "b"] {
            assert_eq!(
                opt_amount(&o, bad, false).unwrap_err().code,
                ResCode::V005,
                "{bad}"
            );
        }
    }

    #[test]
    fn non_objects_are_v001() {
        for body in [&b"[]"[..], b"1", b"\"x\"", b"{", b"", b"\xff\xfe"] {
            assert_eq!(parse_object(body).unwrap_err().code, ResCode::V001);
        }
    }
}
