//! [`InvalidField`], the error of a field that breaks a rule. It sits below both the model
//! (which validates fields) and [`crate::error`] (whose errors name model types), so files
//! import only downward. Re-exported as `kicc_ledger::error::InvalidField`.

use std::fmt;

/// A field that breaks a rule: fix the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidField {
    /// The field (CSV column name).
    pub field: &'static str,
    /// Why it is refused.
    pub why: String,
}

impl InvalidField {
    pub(crate) fn new(field: &'static str, why: impl Into<String>) -> Self {
        InvalidField {
            field,
            why: why.into(),
        }
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl std::error::Error for InvalidField {}
