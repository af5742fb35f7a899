//! A field that broke an API rule: the error every validated value returns.
//!
//! A leaf module: the value modules (text, money, dates, codes) use it, and it uses nothing
//! of this crate.

use std::fmt;

/// Which rule a field broke. Every variant reads as the end of a sentence that
/// starts with the field's name, e.g. `amount: is required for reviseTypeCode 32`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The field is required and was not given.
    Required,
    /// The field is present but empty.
    Empty,
    /// The value is longer than the API allows, measured in UTF-8 bytes.
    TooLong {
        /// The limit, in bytes.
        max_bytes: usize,
        /// The value's length, in bytes.
        actual_bytes: usize,
    },
    /// The value contains a character the gateway forbids.
    ForbiddenCharacter {
        /// The character.
        ch: char,
        /// Its byte offset in the value.
        at_byte: usize,
    },
    /// The value must be exactly this many ASCII digits.
    Digits {
        /// How many digits are expected.
        expected: usize,
    },
    /// The digits do not form a real calendar date or time.
    NotACalendarDate,
    /// An amount must be greater than zero.
    NotPositive,
    /// An amount is larger than the SDK accepts.
    TooLarge {
        /// The largest accepted value, in minor units.
        max_minor_units: u64,
    },
    /// A decimal amount written by a person could not be read exactly.
    Decimal(&'static str),
    /// The value is not one of the values this channel accepts.
    NotAllowed {
        /// The value given.
        value: String,
        /// The accepted values, for the message.
        allowed: &'static str,
    },
    /// `reviseTypeCode` is a partial one, so an amount is required.
    AmountRequired {
        /// The partial `reviseTypeCode`.
        code: &'static str,
    },
    /// `reviseTypeCode` cancels everything, so an amount must not be given.
    AmountNotAllowed {
        /// The `reviseTypeCode`.
        code: &'static str,
    },
    /// The amount is larger than the balance it is checked against.
    ExceedsBalance {
        /// The balance, in minor units.
        balance: u64,
    },
    /// The currency does not match the one required here.
    CurrencyMismatch {
        /// The currency required here.
        expected: &'static str,
    },
    /// A URL that is not acceptable (scheme, host, shape).
    Url(&'static str),
    /// Anything else, described in words.
    Other(&'static str),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Required => f.write_str("is required"),
            Rule::Empty => f.write_str("must not be empty"),
            Rule::TooLong {
                max_bytes,
                actual_bytes,
            } => write!(
                f,
                "is {actual_bytes} bytes in UTF-8, at most {max_bytes} bytes allowed"
            ),
            Rule::ForbiddenCharacter { ch, at_byte } => write!(
                f,
                "contains the forbidden character {ch:?} (U+{:04X}) at byte {at_byte}",
                u32::from(*ch)
            ),
            Rule::Digits { expected } => write!(f, "must be exactly {expected} ASCII digits"),
            Rule::NotACalendarDate => f.write_str("is not a real calendar date/time"),
            Rule::NotPositive => f.write_str("must be greater than zero"),
            Rule::TooLarge { max_minor_units } => {
                write!(f, "must be at most {max_minor_units} in minor units")
            }
            Rule::Decimal(why) => write!(f, "is not a valid amount: {why}"),
            Rule::NotAllowed { value, allowed } => {
                write!(
                    f,
                    "value {value:?} is not allowed here (allowed: {allowed})"
                )
            }
            Rule::AmountRequired { code } => {
                write!(f, "is required for the partial reviseTypeCode {code}")
            }
            Rule::AmountNotAllowed { code } => write!(
                f,
                "must not be given with reviseTypeCode {code}, which cancels the whole payment"
            ),
            Rule::ExceedsBalance { balance } => {
                write!(f, "exceeds the cancellable balance of {balance}")
            }
            Rule::CurrencyMismatch { expected } => write!(f, "must be in {expected}"),
            Rule::Url(why) => write!(f, "is not an acceptable URL: {why}"),
            Rule::Other(why) => f.write_str(why),
        }
    }
}

/// A field that broke a rule. The message names the field as the API spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
#[non_exhaustive]
pub struct FieldError {
    /// The field, as the API names it (`pgCno`, `amountInfo.totAmount`, ...).
    pub field: &'static str,
    /// The rule it broke.
    pub rule: Rule,
}

impl FieldError {
    /// A new field error.
    pub fn new(field: &'static str, rule: Rule) -> Self {
        FieldError { field, rule }
    }
}
