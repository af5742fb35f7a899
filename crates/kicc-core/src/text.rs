//! Text fields: lengths in UTF-8 bytes and the characters the gateway forbids.
//!
//! Every string the SDK sends goes through [`check_text`]. The rules, from KICC's documentation:
//! lengths in the API tables are BYTES of UTF-8 (a Hangul syllable is 3 bytes), and the
//! characters `'` `"` `<` `>` `\` `;` `|` `&`, CR, LF and emoji are forbidden in any value
//! (`|` would also corrupt the `msgAuthValue` input). The SDK also refuses every other control
//! character (tab, NUL, ...), which no gateway field can carry meaningfully.

use crate::field::{FieldError, Rule};

/// The ASCII characters KICC forbids in any field value.
pub const FORBIDDEN_ASCII: &[char] = &['\'', '"', '<', '>', '\\', ';', '|', '&', '\r', '\n'];

/// Whether `c` may not appear in a field value: the documented characters, control
/// characters, and emoji (pictographs, dingbats, flags, variation selectors, joiners, tags).
pub fn is_forbidden(c: char) -> bool {
    if FORBIDDEN_ASCII.contains(&c) || c.is_control() {
        return true;
    }
    let u = u32::from(c);
    matches!(u,
        0x1F000..=0x1FAFF      // mahjong, cards, emoticons, symbols & pictographs, transport, flags
        | 0x2600..=0x27BF      // miscellaneous symbols and dingbats
        | 0x2B00..=0x2BFF      // arrows & symbols (⭐ ⬛ ...)
        | 0xFE00..=0xFE0F      // variation selectors (emoji presentation)
        | 0x200D               // zero-width joiner (emoji sequences)
        | 0x20E3               // combining keycap
        | 0xE0000..=0xE007F    // tag characters (flag sequences)
        | 0x231A..=0x231B | 0x23E9..=0x23FA // watch, hourglass, media keys
    )
}

/// Checks a value for `field`: not empty, at most `max_bytes` UTF-8 bytes, no forbidden character.
pub fn check_text(field: &'static str, value: &str, max_bytes: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, Rule::Empty));
    }
    if value.len() > max_bytes {
        return Err(FieldError::new(
            field,
            Rule::TooLong {
                max_bytes,
                actual_bytes: value.len(),
            },
        ));
    }
    if let Some((at_byte, ch)) = first_forbidden(value) {
        return Err(FieldError::new(
            field,
            Rule::ForbiddenCharacter { ch, at_byte },
        ));
    }
    Ok(())
}

/// [`is_forbidden`] for an ASCII byte: the documented characters and the control characters.
fn is_forbidden_ascii(b: u8) -> bool {
    FORBIDDEN_ASCII_TABLE
        .get(usize::from(b))
        .copied()
        .unwrap_or(false)
}

/// `FORBIDDEN_ASCII_TABLE[b]`: whether ASCII byte `b` is forbidden (controls and the
/// documented characters), one lookup per byte.
const FORBIDDEN_ASCII_TABLE: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[0x7F] = true;
    let listed = [b'\'', b'"', b'<', b'>', b'\\', b';', b'|', b'&'];
    let mut i = 0;
    while i < listed.len() {
        t[listed[i] as usize] = true;
        i += 1;
    }
    t
};

/// The first character [`is_forbidden`] refuses, with its byte offset.
///
/// Keys, IDs and dates are ASCII, so the ASCII prefix is checked a byte at a time (the
/// same rule as [`is_forbidden`] restricted to ASCII); the rest, from the first non-ASCII
/// byte (always a character boundary), a character at a time.
fn first_forbidden(value: &str) -> Option<(usize, char)> {
    let bytes = value.as_bytes();
    // One pass: stop at the first forbidden ASCII byte or the first non-ASCII one.
    let ascii_len = bytes
        .iter()
        .position(|&b| !b.is_ascii() || is_forbidden_ascii(b))
        .unwrap_or(bytes.len());
    if let Some(&b) = bytes.get(ascii_len).filter(|b| b.is_ascii()) {
        return Some((ascii_len, char::from(b)));
    }
    value
        .get(ascii_len..)
        .unwrap_or("")
        .char_indices()
        .find(|&(_, c)| is_forbidden(c))
        .map(|(i, c)| (ascii_len + i, c))
}

/// Declares a validated text newtype with its API field name and byte limit.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[doc = concat!("\n\nAPI field `", $field, "`: 1 to ", stringify!($max),
            " UTF-8 bytes, none of the forbidden characters (see [`crate::FORBIDDEN_ASCII`] and [`crate::check_text`]).")]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The API's name for this field.
            pub const FIELD: &'static str = $field;
            /// The API's limit for this field, in UTF-8 bytes.
            pub const MAX_BYTES: usize = $max;

            /// Validates `value` for this field.
            pub fn new(value: impl Into<String>) -> Result<Self, $crate::field::FieldError> {
                Self::for_field($field, value)
            }

            /// Validates `value` with this field's rules, reporting errors under `field`
            /// (for the same kind of value sent under another name, e.g. `cancelPgCno`).
            pub fn for_field(
                field: &'static str,
                value: impl Into<String>,
            ) -> Result<Self, $crate::field::FieldError> {
                let value = value.into();
                $crate::text::check_text(field, &value, $max)?;
                Ok($name(value))
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::field::FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_field!(
    /// The merchant ID KICC assigned (test IDs look like `T5102001`).
    MallId, "mallId", 8
);
text_field!(
    /// A PG transaction ID (`pgCno`): 60 bytes on the Alipay and WeChat Pay APIs; the generic
    /// cancel API allows only 20, which `kicc-generic` checks on top.
    PgCno, "pgCno", 60
);
text_field!(
    /// The merchant's idempotency key for one request. Generate one with
    /// [`ShopTransactionId::generate`] unless you keep your own (never derive it from
    /// order + amount + date: two equal partial refunds on one day would collide).
    ShopTransactionId, "shopTransactionId", 60
);
text_field!(
    /// The reason for a generic cancel.
    ReviseMessage, "reviseMessage", 100
);
text_field!(
    /// The reason for an Alipay / WeChat Pay cancel.
    Memo, "memo", 400
);
text_field!(
    /// The requestor's ID on Alipay / WeChat Pay cancels.
    RegId, "regId", 40
);
text_field!(
    /// The requestor's IP address on generic cancels.
    ClientIp, "clientIp", 20
);
text_field!(
    /// The requestor's ID (merchant admin login) on generic cancels.
    ClientId, "clientId", 32
);
text_field!(
    /// The seller ID in split settlement.
    SellerId, "sellerId", 50
);
text_field!(
    /// The PG transaction ID of one product in split settlement.
    ProductPgCno, "productPgCno", 20
);

/// The URL KICC posts the WeChat Pay cancel result to (`notifyUrl`, at most 1000 bytes).
///
/// Must be an absolute `http://` or `https://` URL with a host and no forbidden character;
/// `https://` is strongly advised (the notice is not signed).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct NotifyUrl(String);

impl NotifyUrl {
    /// The API's name for this field.
    pub const FIELD: &'static str = "notifyUrl";

    /// Validates a notification URL.
    pub fn new(value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        check_text(Self::FIELD, &value, 1000)?;
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or(FieldError::new(
                Self::FIELD,
                Rule::Url("must start with https:// or http://"),
            ))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) || rest.contains(' ') {
            return Err(FieldError::new(
                Self::FIELD,
                Rule::Url("must have a host and no spaces"),
            ));
        }
        Ok(NotifyUrl(value))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NotifyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotifyUrl({:?})", self.0)
    }
}

impl std::fmt::Display for NotifyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NotifyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hangul_is_three_bytes_and_counts_against_the_limit() {
        // 33 syllables = 99 bytes fits reviseMessage (100); 34 = 102 does not.
        let ok = "가".repeat(33);
        assert_eq!(ok.len(), 99);
        assert!(ReviseMessage::new(ok).is_ok());
        let over = "가".repeat(34);
        let err = ReviseMessage::new(over).unwrap_err();
        assert_eq!(err.field, "reviseMessage");
        assert_eq!(
            err.rule,
            Rule::TooLong {
                max_bytes: 100,
                actual_bytes: 102
            }
        );
        // 100 ASCII bytes exactly at the limit.
        assert!(ReviseMessage::new("a".repeat(100)).is_ok());
        assert!(ReviseMessage::new("가".repeat(33) + "a").is_ok());
        assert!(ReviseMessage::new("가".repeat(33) + "ab").is_err());
    }

    #[test]
    fn every_limit_at_and_over_with_hangul() {
        fn check<T>(max: usize, make: impl Fn(String) -> Result<T, FieldError>, field: &str) {
            // Fill with Hangul as far as it fits, then pad with ASCII to the exact limit.
            let mut at = "한".repeat(max / 3);
            at.push_str(&"x".repeat(max % 3));
            assert_eq!(at.len(), max);
            assert!(make(at.clone()).is_ok(), "{field} at limit");
            let over = format!("{at}x");
            let err = make(over).err().expect("over the limit");
            assert_eq!(err.field, field);
            assert!(matches!(err.rule, Rule::TooLong { max_bytes, .. } if max_bytes == max));
            // One Hangul syllable replacing the last ASCII byte(s) also overflows.
            if max >= 3 {
                let mut over_h = "한".repeat(max / 3);
                over_h.push('한');
                assert!(make(over_h).is_err());
            }
        }
        check(8, MallId::new, "mallId");
        check(60, PgCno::new, "pgCno");
        check(60, ShopTransactionId::new, "shopTransactionId");
        check(100, ReviseMessage::new, "reviseMessage");
        check(400, Memo::new, "memo");
        check(40, RegId::new, "regId");
        check(20, ClientIp::new, "clientIp");
        check(32, ClientId::new, "clientId");
        check(50, SellerId::new, "sellerId");
        check(20, ProductPgCno::new, "productPgCno");
    }

    #[test]
    fn each_forbidden_character_is_rejected_with_its_position() {
        for &c in FORBIDDEN_ASCII {
            let v = format!("ab{c}cd");
            let err = Memo::new(v).unwrap_err();
            assert_eq!(
                err,
                FieldError::new("memo", Rule::ForbiddenCharacter { ch: c, at_byte: 2 })
            );
        }
        for emoji in [
            "😀", "🎉", "❤", "☕", "⭐", "🇰🇷", "👍🏽", "\u{FE0F}", "\u{200D}", "⌚",
        ] {
            let v = format!("취소{emoji}");
            let err = Memo::new(v).unwrap_err();
            assert!(
                matches!(err.rule, Rule::ForbiddenCharacter { at_byte: 6, .. }),
                "{emoji:?} gave {err:?}"
            );
        }
        assert!(Memo::new("tab\there").is_err());
        assert!(Memo::new("nul\0").is_err());
    }

    #[test]
    fn ordinary_text_passes() {
        for ok in [
            "고객 요청에 의한 취소",
            "Customer changed mind (order #123)",
            "a-b_c.d/e:f=g?h,i!",
        ] {
            assert!(Memo::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn empty_is_rejected() {
        assert_eq!(
            PgCno::new("").unwrap_err(),
            FieldError::new("pgCno", Rule::Empty)
        );
        assert_eq!(
            PgCno::for_field("cancelPgCno", "").unwrap_err().field,
            "cancelPgCno"
        );
    }

    #[test]
    fn notify_url_shape() {
        assert!(NotifyUrl::new("https://shop.example/kicc/notify?x=1").is_ok());
        assert!(NotifyUrl::new("http://127.0.0.1:9000/hook").is_ok());
        assert!(NotifyUrl::new("ftp://x").is_err());
        assert!(NotifyUrl::new("https://").is_err());
        assert!(NotifyUrl::new("https://a.example/x&y").is_err());
        assert!(NotifyUrl::new(format!("https://a.example/{}", "p".repeat(1000))).is_err());
    }

    #[test]
    fn deserialize_validates() {
        let ok: PgCno = serde_json::from_str("\"2026112100001\"").unwrap();
        assert_eq!(ok.as_str(), "2026112100001");
        assert!(serde_json::from_str::<PgCno>("\"a|b\"").is_err());
        assert!(serde_json::from_str::<MallId>("\"123456789\"").is_err());
    }

    #[test]
    fn ascii_fast_path_is_the_same_rule() {
        for b in 0u8..=0x7F {
            assert_eq!(
                is_forbidden_ascii(b),
                is_forbidden(char::from(b)),
                "byte {b:#04x}"
            );
        }
    }

    proptest! {
        #[test]
        fn fast_scan_finds_what_the_character_scan_finds(s in r"[ -~\PC\x00-\x1f\x7f-\x9f]{0,40}") {
            let by_char = s.char_indices().find(|&(_, c)| is_forbidden(c));
            prop_assert_eq!(first_forbidden(&s), by_char);
        }

        #[test]
        fn accepted_values_satisfy_every_rule(s in "\\PC{0,40}") {
            match Memo::new(s.clone()) {
                Ok(m) => {
                    prop_assert!(!s.is_empty() && s.len() <= 400);
                    prop_assert!(!s.chars().any(is_forbidden));
                    prop_assert_eq!(m.as_str(), s.as_str());
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "memo");
                    prop_assert!(s.is_empty() || s.chars().any(is_forbidden));
                }
            }
        }

        #[test]
        fn byte_limit_is_exact(n in 0usize..30, hangul in 0usize..30) {
            let s = format!("{}{}", "a".repeat(n), "가".repeat(hangul));
            let r = ClientIp::new(s.clone());
            prop_assert_eq!(r.is_ok(), !s.is_empty() && s.len() <= 20);
        }
    }
}
