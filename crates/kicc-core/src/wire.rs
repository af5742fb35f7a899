//! Reading KICC's JSON leniently where the documentation says it varies.
//!
//! Amounts arrive as JSON strings in the provider's examples (`"cancelAmount": "51004"`) and
//! as numbers in real responses; both are accepted. Unknown fields are ignored everywhere.
//! Floats, negatives and non-digit strings are refused: an amount that cannot be read exactly
//! is not guessed at.

use percent_encoding::percent_decode_str;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

use crate::money::{Amount, Currency};

struct LenientAmount;

impl<'de> Visitor<'de> for LenientAmount {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer amount, as a JSON number or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("a negative amount"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom("an amount with a fractional part"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 19 {
            return Err(E::custom("an amount string that is not a plain integer"));
        }
        t.parse::<u64>()
            .map(Some)
            .map_err(|_| E::custom("an amount out of range"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LenientAmount)
    }
}

/// `#[serde(deserialize_with = "...")]` for an optional amount: number, digit string, `""` or `null`.
pub fn opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(LenientAmount)
}

/// `#[serde(deserialize_with = "...")]` for a required amount: number or digit string.
pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(LenientAmount)?
        .ok_or_else(|| de::Error::custom("a required amount is empty"))
}

/// The common head of every KICC response: code, message and the echoed key.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Envelope {
    /// `resCd`.
    #[serde(default)]
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `shopTransactionId`, echoed.
    #[serde(default)]
    pub shop_transaction_id: String,
}

impl Envelope {
    /// Reads just the head of a response body; `None` when it is not a JSON object.
    pub fn read(body: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(body).ok()
    }
}

/// `amountInfo` in Alipay / WeChat Pay requests: the currency and the amount in minor units
/// (`totAmount`: USD in cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountInfo {
    /// `currency`: `KRW` or `USD`.
    pub currency: Currency,
    /// `totAmount`, in minor units.
    pub tot_amount: Amount,
}

/// `amountInfo` as responses carry it: tolerant of strings, unknown currencies and gaps.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseAmountInfo {
    /// `currency`, verbatim.
    #[serde(default)]
    pub currency: String,
    /// `totAmount` in minor units (`amount` in the WeChat Pay webhook).
    #[serde(default, deserialize_with = "opt_amount", alias = "amount")]
    pub tot_amount: Option<u64>,
}

/// Decodes one `application/x-www-form-urlencoded` value (as KICC sends `resDetailMsg`).
///
/// `+` is a space and `%XX` (two hex digits) is the byte `XX`, decoded by the
/// `percent-encoding` crate. A malformed escape, a `%` and the (at most two, ASCII)
/// characters after it, is kept as it is: `%+5` stays `%+5` (its `+` is not a space), `%4`
/// stays `%4`, `100%` stays `100%`. Bytes that are not UTF-8 after decoding are replaced with
/// U+FFFD. Borrows `s` when there is nothing to decode. Never panics.
pub fn decode_form_value(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let well_formed = |i: usize| {
        b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    };
    let needs_rewrite = b
        .iter()
        .enumerate()
        .any(|(i, &c)| c == b'+' || (c == b'%' && !well_formed(i)));
    if !needs_rewrite {
        return percent_decode_str(s).decode_utf8_lossy();
    }
    // Rewrite into plain percent-encoding first: a literal `+` becomes a space, and the
    // characters of a malformed escape are escaped themselves so that they come out as
    // they went in. The decoding proper is then `percent-encoding`'s.
    let mut plain = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                plain.push(' ');
                i += 1;
            }
            b'%' if well_formed(i) => {
                plain.push_str(&s[i..i + 3]);
                i += 3;
            }
            b'%' => {
                plain.push_str("%25");
                i += 1;
                let mut taken = 0;
                while taken < 2 && b.get(i).is_some_and(u8::is_ascii) {
                    match b[i] {
                        b'%' => plain.push_str("%25"),
                        b'+' => plain.push_str("%2B"),
                        c => plain.push(char::from(c)),
                    }
                    i += 1;
                    taken += 1;
                }
            }
            _ => {
                // The whole character, however many bytes it has (`i` is always on a
                // character boundary: every other branch steps over ASCII bytes only).
                let ch = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                plain.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    Cow::Owned(percent_decode_str(&plain).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "opt_amount")]
        a: Option<u64>,
    }

    #[test]
    fn string_or_number() {
        let p = |s: &str| serde_json::from_str::<T>(s).map(|t| t.a);
        assert_eq!(p(r#"{"a": 51004}"#).unwrap(), Some(51004));
        assert_eq!(p(r#"{"a": "51004"}"#).unwrap(), Some(51004));
        assert_eq!(p(r#"{"a": ""}"#).unwrap(), None);
        assert_eq!(p(r#"{"a": null}"#).unwrap(), None);
        assert_eq!(p(r#"{}"#).unwrap(), None);
        assert!(p(r#"{"a": 1.5}"#).is_err());
        assert!(p(r#"{"a": -3}"#).is_err());
        assert!(p(r#"{"a": "12a"}"#).is_err());
        assert!(p(r#"{"a": "99999999999999999999999"}"#).is_err());
        assert!(p(r#"{"a": true}"#).is_err());
    }

    #[test]
    fn amount_info_both_spellings() {
        let r: ResponseAmountInfo =
            serde_json::from_str(r#"{"currency":"USD","totAmount":5022,"x":1}"#).unwrap();
        assert_eq!(r.tot_amount, Some(5022));
        let r: ResponseAmountInfo =
            serde_json::from_str(r#"{"currency":"KRW","amount":"1000"}"#).unwrap();
        assert_eq!(r.tot_amount, Some(1000));
        let req = AmountInfo {
            currency: Currency::Usd,
            tot_amount: Amount::new("amountInfo.totAmount", 1203).unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"currency":"USD","totAmount":1203}"#
        );
    }

    #[test]
    fn decodes_form_values() {
        // (input, expected)
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("plain", "plain"),
            ("%E8%AE%A2%E5%8D%95+closed", "订单 closed"),
            ("OK+done", "OK done"),
            ("a%20b", "a b"),
            ("%2B", "+"),
            ("1%2B1+%3D+2", "1+1 = 2"),
            ("%e8%ae%a2", "订"),
            ("100%", "100%"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz%4", "%zz%4"),
            ("%+5", "%+5"),
            ("%-5", "%-5"),
            ("% 5", "% 5"),
            ("%%41", "%%41"),
            ("%4%41", "%4%41"),
            ("%+5+x", "%+5 x"),
            ("100%+off", "100%+off"),
            ("%é", "%é"),
            ("%4é%41", "%4éA"),
            ("a+%zz+b", "a %zz b"),
            ("%G1", "%G1"),
            ("%ff", "\u{fffd}"),
            ("a%C3b", "a\u{fffd}b"),
            ("%C3%A9", "é"),
            ("%00", "\u{0}"),
            ("订单", "订单"),
        ];
        for (input, expected) in table {
            assert_eq!(decode_form_value(input), *expected, "decoding {input:?}");
        }
    }

    #[test]
    fn nothing_to_decode_borrows() {
        assert!(matches!(decode_form_value("OK"), Cow::Borrowed("OK")));
        assert!(matches!(
            decode_form_value("订单 OK"),
            Cow::Borrowed("订单 OK")
        ));
        assert!(matches!(decode_form_value("%4"), Cow::Owned(_)));
        assert!(matches!(decode_form_value("a+b"), Cow::Owned(_)));
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in "\\PC{0,40}") {
            let _ = decode_form_value(&s);
        }

        /// Whatever is percent-encoded (with `+` for spaces) decodes back to itself.
        #[test]
        fn encoding_round_trips(s in "\\PC{0,40}") {
            let encoded: String = s
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_owned(),
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            prop_assert_eq!(decode_form_value(&encoded), s.as_str());
        }
    }
}
