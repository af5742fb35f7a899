//! Response codes and what each means for the caller.
//!
//! `resCd == "0000"` is success; every other value is a failure. Messages may change, codes do
//! not. A few codes are not final answers but instructions: Alipay / WeChat Pay `A210`..`A219`
//! (retry with the same `shopTransactionId` and `cancelReqDate`) and generic `VTIM` / `VT00`
//! (the instant refund timed out: resend with `refundQueryFlag = "Y"`).

use crate::revise::Channel;

/// The success code.
pub const SUCCESS: &str = "0000";

/// Card-issuer decline codes KICC documents (the card company said no).
pub const CARD_ISSUER_DECLINES: &[&str] = &[
    "8521", "8035", "8311", "8314", "8315", "8316", "8350", "8373", "8527",
];

/// What a `resCd` tells the caller to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseClass {
    /// `0000`: done.
    Success,
    /// A final failure: the cancel did not happen.
    Declined,
    /// `A210`..`A219` on Alipay / WeChat Pay: resend the identical request (same key, same date).
    RetrySameRequest,
    /// `VTIM` / `VT00` on the generic API: the outcome is unknown; resend with
    /// `refundQueryFlag = "Y"` to learn it.
    ResendWithRefundQuery,
    /// Not a well-formed code (empty, wrong length, not ASCII alphanumeric): the answer
    /// cannot be trusted either way.
    Ambiguous,
}

/// Classifies `res_cd` as received on `channel`.
pub fn classify(channel: Channel, res_cd: &str) -> ResponseClass {
    let b = res_cd.as_bytes();
    if b.len() != 4 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return ResponseClass::Ambiguous;
    }
    if res_cd == SUCCESS {
        return ResponseClass::Success;
    }
    match channel {
        Channel::Alipay | Channel::WeChat if is_a21x(b) => ResponseClass::RetrySameRequest,
        Channel::Generic if res_cd == "VTIM" || res_cd == "VT00" => {
            ResponseClass::ResendWithRefundQuery
        }
        _ => ResponseClass::Declined,
    }
}

fn is_a21x(b: &[u8]) -> bool {
    matches!(b, [b'A', b'2', b'1', d] if d.is_ascii_digit())
}

/// Whether `res_cd` is a documented card-issuer decline.
pub fn is_card_issuer_decline(res_cd: &str) -> bool {
    CARD_ISSUER_DECLINES.contains(&res_cd)
}

/// A transaction status code (`statusCode`, `cancelStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionStatus {
    /// TS01 approved.
    Approved,
    /// TS02 approval cancelled (full cancel).
    Cancelled,
    /// TS03 capture requested.
    CaptureRequested,
    /// TS04 captured.
    Captured,
    /// TS05 capture cancelled.
    CaptureCancelled,
    /// TS06 partially cancelled.
    PartiallyCancelled,
    /// TS07 awaiting deposit.
    AwaitingDeposit,
    /// TS08 deposited.
    Deposited,
    /// TS12 network cancel (void), on the Alipay and WeChat Pay status APIs.
    NetworkCancelled,
    /// RF01 refund requested.
    RefundRequested,
    /// RF02 refund completed.
    RefundCompleted,
    /// RF03 refund rejected.
    RefundRejected,
    /// ES01..ES19 escrow states, and any code this SDK does not know: kept verbatim.
    Other(String),
}

impl TransactionStatus {
    /// Reads a status code; unknown codes are kept as [`TransactionStatus::Other`].
    pub fn parse(code: &str) -> Self {
        use TransactionStatus::*;
        match code {
            "TS01" => Approved,
            "TS02" => Cancelled,
            "TS03" => CaptureRequested,
            "TS04" => Captured,
            "TS05" => CaptureCancelled,
            "TS06" => PartiallyCancelled,
            "TS07" => AwaitingDeposit,
            "TS08" => Deposited,
            "TS12" => NetworkCancelled,
            "RF01" => RefundRequested,
            "RF02" => RefundCompleted,
            "RF03" => RefundRejected,
            other => Other(other.to_owned()),
        }
    }

    /// The code, as KICC sends it.
    pub fn code(&self) -> &str {
        use TransactionStatus::*;
        match self {
            Approved => "TS01",
            Cancelled => "TS02",
            CaptureRequested => "TS03",
            Captured => "TS04",
            CaptureCancelled => "TS05",
            PartiallyCancelled => "TS06",
            AwaitingDeposit => "TS07",
            Deposited => "TS08",
            NetworkCancelled => "TS12",
            RefundRequested => "RF01",
            RefundCompleted => "RF02",
            RefundRejected => "RF03",
            Other(s) => s,
        }
    }
}

impl<'de> serde::Deserialize<'de> for TransactionStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(TransactionStatus::parse(&s))
    }
}

impl serde::Serialize for TransactionStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        use Channel::*;
        use ResponseClass::*;
        let cases: &[(Channel, &str, ResponseClass)] = &[
            (Generic, "0000", Success),
            (Alipay, "0000", Success),
            (WeChat, "0000", Success),
            (Alipay, "A210", RetrySameRequest),
            (Alipay, "A212", RetrySameRequest),
            (Alipay, "A219", RetrySameRequest),
            (WeChat, "A215", RetrySameRequest),
            (Alipay, "A220", Declined),
            (Alipay, "A209", Declined),
            (Generic, "A212", Declined),
            (Generic, "VTIM", ResendWithRefundQuery),
            (Generic, "VT00", ResendWithRefundQuery),
            (Alipay, "VTIM", Declined),
            (Generic, "8521", Declined),
            (Generic, "", Ambiguous),
            (Generic, "000", Ambiguous),
            (Generic, "00000", Ambiguous),
            (Alipay, "A2 1", Ambiguous),
            (WeChat, "가나", Ambiguous),
        ];
        for (ch, code, want) in cases {
            assert_eq!(classify(*ch, code), *want, "{ch:?} {code:?}");
        }
        assert!(is_card_issuer_decline("8316"));
        assert!(!is_card_issuer_decline("0000"));
    }

    #[test]
    fn statuses_round_trip() {
        for c in ["TS01", "TS02", "TS06", "TS12", "RF02", "ES07"] {
            assert_eq!(TransactionStatus::parse(c).code(), c);
        }
        assert_eq!(
            TransactionStatus::parse("TS02"),
            TransactionStatus::Cancelled
        );
    }

    proptest! {
        #[test]
        fn only_0000_is_success(code in "\\PC{0,6}") {
            for ch in [Channel::Generic, Channel::Alipay, Channel::WeChat] {
                prop_assert_eq!(classify(ch, &code) == ResponseClass::Success, code == "0000");
            }
        }
    }
}
