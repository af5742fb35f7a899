//! The `resCd` values the sandbox answers.

use std::fmt;

/// A `resCd` the sandbox answers for a business outcome (always with HTTP 200).
///
/// `0000` is KICC's documented success code. Every other variant is a
/// **SANDBOX code**: KICC does not publish its codes for these rules, so a
/// client must not branch on these exact values in production; they exist so
/// that tests can tell the rules apart. See the crate documentation for the
/// full table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResCode {
    /// `0000`: success (for WeChat: accepted, result by webhook).
    Success,
    /// `V001`: missing or malformed field, or a body that is not a JSON object.
    V001,
    /// `V002`: field longer than its limit, counted in UTF-8 bytes.
    V002,
    /// `V003`: forbidden character in a string value.
    V003,
    /// `V004`: `reviseTypeCode` not allowed on this endpoint.
    V004,
    /// `V005`: amount rule violated.
    V005,
    /// `V006`: bad `cancelReqDate`.
    V006,
    /// `V007`: unknown `mallId`.
    V007,
    /// `V008`: `msgAuthValue` mismatch.
    V008,
    /// `V009`: `taxInfo` incomplete.
    V009,
    /// `V010`: `basketUsed` and `basketInfo` disagree.
    V010,
    /// `D001`: duplicate `shopTransactionId` on the same Korea day.
    D001,
    /// `P001`: payment (or cancel) not found.
    P001,
    /// `P002`: payment already fully cancelled.
    P002,
    /// `P003`: amount exceeds the cancellable balance.
    P003,
    /// `P004`: `remainAmount` does not match the cancellable balance (before
    /// this cancel, or after it, by the `remainAmountConvention` setting).
    P004,
    /// `P005`: this code or endpoint does not apply to this payment.
    P005,
    /// `P006`: currency differs from the payment's.
    P006,
    /// `P007`: an escrow payment cannot be cancelled with 40, 32 or 33 (the
    /// escrow status change API changes it).
    P007,
    /// `R001`: `retrieveTransaction` found no request with that key processed
    /// on that date (never sent, rejected with a `V` code, or still in flight).
    R001,
    /// `R002`: `retrieveTransaction` asked for a date outside the query window
    /// (only the current and the previous Korea date).
    R002,
    /// `W001`: the default `resCd` of a WeChat cancel made to fail by a
    /// `wechatFail` fault.
    W001,
}

impl ResCode {
    /// The four-character code as sent in `resCd`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "0000",
            Self::V001 => "V001",
            Self::V002 => "V002",
            Self::V003 => "V003",
            Self::V004 => "V004",
            Self::V005 => "V005",
            Self::V006 => "V006",
            Self::V007 => "V007",
            Self::V008 => "V008",
            Self::V009 => "V009",
            Self::V010 => "V010",
            Self::D001 => "D001",
            Self::P001 => "P001",
            Self::P002 => "P002",
            Self::P003 => "P003",
            Self::P004 => "P004",
            Self::P005 => "P005",
            Self::P006 => "P006",
            Self::P007 => "P007",
            Self::R001 => "R001",
            Self::R002 => "R002",
            Self::W001 => "W001",
        }
    }

    /// Every code, in table order.
    pub const ALL: [ResCode; 22] = [
        Self::Success,
        Self::V001,
        Self::V002,
        Self::V003,
        Self::V004,
        Self::V005,
        Self::V006,
        Self::V007,
        Self::V008,
        Self::V009,
        Self::V010,
        Self::D001,
        Self::P001,
        Self::P002,
        Self::P003,
        Self::P004,
        Self::P005,
        Self::P006,
        Self::P007,
        Self::R001,
        Self::R002,
        Self::W001,
    ];
}

impl fmt::Display for ResCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected request: the code and a message naming the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) code: ResCode,
    pub(crate) msg: String,
}

impl Reject {
    pub(crate) fn new(code: ResCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
}
