//! Validated inputs: identifiers, the signature's timestamp and nonce, base URLs.
//!
//! Every constructor checks the API's rules and returns an [`InvalidInput`]
//! that names the field and the rule; a value of one of these types is valid
//! by construction.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// An input that breaks one of the API's rules. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A required value is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field, as the API names it.
        field: &'static str,
    },
    /// A value is longer than the API allows.
    #[error("{field}: at most {max} characters, got {actual}")]
    TooLong {
        /// The field, as the API names it.
        field: &'static str,
        /// The maximum length in characters.
        max: usize,
        /// The length given.
        actual: usize,
    },
    /// A value must have an exact length.
    #[error("{field}: must be exactly {expected} characters, got {actual}")]
    WrongLength {
        /// The field, as the API names it.
        field: &'static str,
        /// The required length in characters.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A value contains a character the rule forbids.
    #[error("{field}: character at position {position} is not allowed ({rule})")]
    ForbiddenCharacter {
        /// The field, as the API names it.
        field: &'static str,
        /// Zero-based character position of the first offending character.
        position: usize,
        /// The rule that was broken.
        rule: &'static str,
    },
    /// A value breaks a rule not covered by the variants above.
    #[error("{field}: {rule}")]
    Rule {
        /// The field, as the API names it.
        field: &'static str,
        /// The rule that was broken.
        rule: &'static str,
    },
}

/// Checks `1..=max` characters and no control characters.
fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(InvalidInput::Empty { field });
    }
    let count = value.chars().count();
    if count > max {
        return Err(InvalidInput::TooLong {
            field,
            max,
            actual: count,
        });
    }
    if let Some(position) = value.chars().position(char::is_control) {
        return Err(InvalidInput::ForbiddenCharacter {
            field,
            position,
            rule: "control characters (including CR and LF) are not allowed",
        });
    }
    Ok(())
}

/// Checks a value that becomes a URL path segment: text rules plus no dot-segment.
fn check_path_segment(field: &'static str, value: &str) -> Result<(), InvalidInput> {
    check_text(field, value, 32)?;
    if value == "." || value == ".." {
        return Err(InvalidInput::Rule {
            field,
            rule: "must not be \".\" or \"..\" (it is a URL path segment)",
        });
    }
    Ok(())
}

macro_rules! text_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidInput> {
                let value = value.into();
                let check: fn(&'static str, &str) -> Result<(), InvalidInput> = $check;
                check($field, &value)?;
                Ok(Self(value))
            }

            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, InvalidInput> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// WeChat Pay order number (`transaction_id`, path parameter `id`): 1 to 32
    /// characters, no control characters, not `.` or `..`.
    TransactionId,
    "transaction_id",
    check_path_segment
);

text_newtype!(
    /// The merchant's order number (`out_trade_no`): 1 to 32 characters, no
    /// control characters, not `.` or `..`.
    OutTradeNo,
    "out_trade_no",
    check_path_segment
);

text_newtype!(
    /// A merchant ID (`mchid`, `sp_mchid` or `sub_mchid`): 1 to 32 characters, no
    /// control characters.
    ///
    /// [`MchId::new`] reports the field as `mchid`; use
    /// [`MchId::new_for_field`] to name `sp_mchid` or `sub_mchid` in errors.
    MchId,
    "mchid",
    |field, value| check_text(field, value, 32)
);

impl MchId {
    /// Validates `value` like [`MchId::new`] but names `field` in the error.
    pub fn new_for_field(
        field: &'static str,
        value: impl Into<String>,
    ) -> Result<Self, InvalidInput> {
        let value = value.into();
        check_text(field, &value, 32)?;
        Ok(Self(value))
    }
}

fn check_serial(field: &'static str, value: &str) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(InvalidInput::Empty { field });
    }
    let count = value.chars().count();
    if count > 64 {
        return Err(InvalidInput::TooLong {
            field,
            max: 64,
            actual: count,
        });
    }
    if let Some(position) = value
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(InvalidInput::ForbiddenCharacter {
            field,
            position,
            rule: "only ASCII letters, digits, '_' and '-' are allowed",
        });
    }
    Ok(())
}

text_newtype!(
    /// A certificate serial number or WeChat Pay public key ID: the merchant's
    /// `serial_no`, or a `Wechatpay-Serial` (platform certificate serial in hex,
    /// or `PUB_KEY_ID_...`). 1 to 64 characters from `[0-9A-Za-z_-]`.
    SerialNo,
    "serial_no",
    check_serial
);

impl SerialNo {
    /// Validates `value` like [`SerialNo::new`] but names `field` in the error.
    pub fn new_for_field(
        field: &'static str,
        value: impl Into<String>,
    ) -> Result<Self, InvalidInput> {
        let value = value.into();
        check_serial(field, &value)?;
        Ok(Self(value))
    }
}

/// The signature nonce (`nonce_str`): exactly 32 characters from `[0-9A-Za-z]`.
///
/// The sans-IO layer never generates one: pass it in. [`Nonce::from_random_bytes`]
/// turns random bytes you drew (e.g. from `ring::rand::SystemRandom`) into one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

const NONCE_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Nonce {
    /// The required length.
    pub const LEN: usize = 32;

    /// Validates a nonce: exactly 32 characters from `[0-9A-Za-z]`.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidInput> {
        let value = value.into();
        let field = "nonce_str";
        if let Some(position) = value.chars().position(|c| !c.is_ascii_alphanumeric()) {
            return Err(InvalidInput::ForbiddenCharacter {
                field,
                position,
                rule: "only [0-9A-Za-z] is allowed",
            });
        }
        if value.len() != Self::LEN {
            return Err(InvalidInput::WrongLength {
                field,
                expected: Self::LEN,
                actual: value.len(),
            });
        }
        Ok(Self(value))
    }

    /// Builds a uniformly distributed nonce from random bytes by rejection
    /// sampling (bytes >= 248 are skipped). Returns `None` when `random` holds
    /// fewer than 32 usable bytes; 64 bytes practically always suffice.
    pub fn from_random_bytes(random: &[u8]) -> Option<Self> {
        let mut out = String::with_capacity(Self::LEN);
        for &b in random {
            if out.len() == Self::LEN {
                break;
            }
            // 248 = 4 * 62: values below it map uniformly onto the alphabet.
            if b < 248 {
                let index = usize::from(b) % NONCE_ALPHABET.len();
                if let Some(&c) = NONCE_ALPHABET.get(index) {
                    out.push(char::from(c));
                }
            }
        }
        (out.len() == Self::LEN).then_some(Self(out))
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({:?})", self.0)
    }
}

impl std::str::FromStr for Nonce {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// A point in time in Unix SECONDS (not milliseconds), as WeChat Pay signs it.
///
/// Valid range: `1..=9_999_999_999`; a 13-digit millisecond value is refused,
/// because it is the most common signing bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The largest accepted value (10 digits).
    pub const MAX_SECS: u64 = 9_999_999_999;

    /// Validates Unix seconds.
    pub fn from_unix_secs(secs: u64) -> Result<Self, InvalidInput> {
        if secs == 0 {
            return Err(InvalidInput::Rule {
                field: "timestamp",
                rule: "must be a positive number of Unix seconds",
            });
        }
        if secs > Self::MAX_SECS {
            return Err(InvalidInput::Rule {
                field: "timestamp",
                rule: "must be Unix seconds (at most 10 digits), not milliseconds",
            });
        }
        Ok(Self(secs))
    }

    /// Converts a `SystemTime` (this does not read the clock; you pass the time in).
    pub fn from_system_time(time: SystemTime) -> Result<Self, InvalidInput> {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| InvalidInput::Rule {
                field: "timestamp",
                rule: "must not be before 1970-01-01",
            })?
            .as_secs();
        Self::from_unix_secs(secs)
    }

    /// Unix seconds.
    pub fn unix_secs(self) -> u64 {
        self.0
    }

    /// Parses decimal Unix seconds as written in a header (ASCII digits only).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidInput> {
        if text.is_empty() {
            return Err(InvalidInput::Empty { field });
        }
        if let Some(position) = text.chars().position(|c| !c.is_ascii_digit()) {
            return Err(InvalidInput::ForbiddenCharacter {
                field,
                position,
                rule: "must be decimal Unix seconds (ASCII digits only)",
            });
        }
        let secs = text.parse::<u64>().map_err(|_| InvalidInput::Rule {
            field,
            rule: "must be Unix seconds (at most 10 digits), not milliseconds",
        })?;
        Self::from_unix_secs(secs).map_err(|e| match e {
            InvalidInput::Rule { rule, .. } => InvalidInput::Rule { field, rule },
            other => other,
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which order to revoke: by WeChat Pay's `transaction_id` or the merchant's `out_trade_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// `POST /v3/global/micropay/transactions/id/{transaction_id}/reverse`
    TransactionId(TransactionId),
    /// `POST /v3/global/micropay/transactions/out-trade-no/{out_trade_no}/reverse`
    OutTradeNo(OutTradeNo),
}

impl OrderRef {
    /// Shorthand: a validated `transaction_id`.
    pub fn transaction_id(value: impl Into<String>) -> Result<Self, InvalidInput> {
        TransactionId::new(value).map(Self::TransactionId)
    }

    /// Shorthand: a validated `out_trade_no`.
    pub fn out_trade_no(value: impl Into<String>) -> Result<Self, InvalidInput> {
        OutTradeNo::new(value).map(Self::OutTradeNo)
    }
}

/// Who calls: a merchant (common mode) or an institution on behalf of a sub-merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantMode {
    /// Common mode: body `{"mchid": ...}`.
    Common {
        /// The merchant's ID.
        mchid: MchId,
    },
    /// Institutional mode: body `{"sp_mchid": ..., "sub_mchid": ...}`.
    Institutional {
        /// The institution's merchant ID (the caller; it signs).
        sp_mchid: MchId,
        /// The sub-merchant's ID.
        sub_mchid: MchId,
    },
}

impl MerchantMode {
    /// Common mode with a validated `mchid`.
    pub fn common(mchid: impl Into<String>) -> Result<Self, InvalidInput> {
        Ok(Self::Common {
            mchid: MchId::new_for_field("mchid", mchid)?,
        })
    }

    /// Institutional mode with validated `sp_mchid` and `sub_mchid`.
    pub fn institutional(
        sp_mchid: impl Into<String>,
        sub_mchid: impl Into<String>,
    ) -> Result<Self, InvalidInput> {
        Ok(Self::Institutional {
            sp_mchid: MchId::new_for_field("sp_mchid", sp_mchid)?,
            sub_mchid: MchId::new_for_field("sub_mchid", sub_mchid)?,
        })
    }

    /// The caller's merchant ID, which goes into `Authorization`'s `mchid`:
    /// `mchid` in common mode, `sp_mchid` in institutional mode.
    pub fn caller_mchid(&self) -> &MchId {
        match self {
            Self::Common { mchid } => mchid,
            Self::Institutional { sp_mchid, .. } => sp_mchid,
        }
    }
}

/// Where requests go: kicc-rs's one base-URL type, shared with the KICC clients.
///
/// `https://` anywhere, plain `http://` only to a loopback host (the sandbox); see
/// [`kicc_core::BaseUrl::new`] and [`kicc_core::is_loopback_host`].
/// [`BaseUrl::hong_kong`] is the default primary, [`BaseUrl::mainland`] the alternative. The
/// host is not part of the signature, so one signed request can be sent to any base URL.
pub use kicc_core::BaseUrl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_enforce_length_and_characters() {
        assert!(TransactionId::new("1217752501201407033233368018").is_ok());
        assert_eq!(
            OutTradeNo::new(""),
            Err(InvalidInput::Empty {
                field: "out_trade_no"
            })
        );
        assert_eq!(
            OutTradeNo::new("x".repeat(33)),
            Err(InvalidInput::TooLong {
                field: "out_trade_no",
                max: 32,
                actual: 33
            })
        );
        // 32 multi-byte characters are fine: the limit is in characters.
        assert!(OutTradeNo::new("é".repeat(32)).is_ok());
        assert!(matches!(
            TransactionId::new("12\n34"),
            Err(InvalidInput::ForbiddenCharacter {
                field: "transaction_id",
                position: 2,
                ..
            })
        ));
        assert!(matches!(
            OutTradeNo::new(".."),
            Err(InvalidInput::Rule {
                field: "out_trade_no",
                ..
            })
        ));
        assert!(matches!(
            MerchantMode::institutional("1900000109", ""),
            Err(InvalidInput::Empty { field: "sub_mchid" })
        ));
        assert!(matches!(
            MerchantMode::institutional("1".repeat(33), "2"),
            Err(InvalidInput::TooLong {
                field: "sp_mchid",
                ..
            })
        ));
    }

    #[test]
    fn nonce_rules() {
        assert!(Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").is_ok());
        assert!(matches!(
            Nonce::new("short"),
            Err(InvalidInput::WrongLength {
                expected: 32,
                actual: 5,
                ..
            })
        ));
        assert!(matches!(
            Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67V-"),
            Err(InvalidInput::ForbiddenCharacter { position: 31, .. })
        ));
        let n = Nonce::from_random_bytes(&[0u8; 32]).unwrap();
        assert_eq!(n.as_str(), "0".repeat(32));
        // Bytes >= 248 are skipped, so 32 of them plus 31 usable ones are not enough.
        let mut bytes = vec![255u8; 32];
        bytes.extend([61u8; 31]);
        assert!(Nonce::from_random_bytes(&bytes).is_none());
        bytes.push(61);
        assert_eq!(
            Nonce::from_random_bytes(&bytes).unwrap().as_str(),
            "z".repeat(32)
        );
    }

    #[test]
    fn timestamp_refuses_milliseconds() {
        assert!(Timestamp::from_unix_secs(1_700_000_000).is_ok());
        assert!(Timestamp::from_unix_secs(1_700_000_000_000).is_err());
        assert!(Timestamp::from_unix_secs(0).is_err());
        assert_eq!(
            Timestamp::parse("timestamp", "1700000000")
                .unwrap()
                .unix_secs(),
            1_700_000_000
        );
        assert!(Timestamp::parse("timestamp", "+170").is_err());
        assert!(Timestamp::parse("timestamp", "99999999999999999999999").is_err());
    }

    #[test]
    fn base_url_is_the_shared_one_with_loopback_only_plain_http() {
        assert_eq!(
            BaseUrl::new("https://x.example/").unwrap().as_str(),
            "https://x.example"
        );
        assert!(BaseUrl::new("http://127.0.0.1:8780").is_ok());
        assert!(BaseUrl::new("http://[::1]:8780").is_ok());
        // WeChat Pay direct used to allow plain http to any host; not any more.
        assert!(BaseUrl::new("http://apihk.mch.weixin.qq.com").is_err());
        assert!(BaseUrl::new("http://10.0.0.1:8780").is_err());
        assert!(BaseUrl::new("http://127.0.0.1@apihk.mch.weixin.qq.com").is_err());
        assert!(BaseUrl::new("ftp://x.example").is_err());
        assert!(BaseUrl::new("x.example").is_err());
        assert!(BaseUrl::new("https://x.example?a=b").is_err());
        assert_eq!(
            BaseUrl::hong_kong().as_str(),
            "https://apihk.mch.weixin.qq.com"
        );
        assert_eq!(
            BaseUrl::mainland().as_str(),
            "https://api.mch.weixin.qq.com"
        );
    }
}
