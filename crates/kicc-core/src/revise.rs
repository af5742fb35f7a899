//! `reviseTypeCode`: what a revise request does, which channel accepts it, and the one
//! place that says which codes need an amount.

use std::fmt;

use crate::field::{FieldError, Rule};

/// The KICC API a request goes to. Each accepts its own set of `reviseTypeCode`s and has
/// its own retry rule (see [`Channel::retry_style`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// `POST /api/trades/revise`: card, bank transfer, mobile, cash receipt, capture.
    Generic,
    /// `POST /api/trades/alipay/revise`.
    Alipay,
    /// `POST /api/trades/wechatpay/revise` (asynchronous: the result comes by webhook).
    WeChat,
}

impl Channel {
    /// The codes this channel's API accepts.
    pub fn allowed_codes(self) -> &'static [ReviseTypeCode] {
        use ReviseTypeCode::*;
        match self {
            Channel::Generic => &[
                Capture,
                PartialCard,
                PartialTransferOrMobile,
                Full,
                CashReceipt,
                CashReceiptPartial,
            ],
            Channel::Alipay | Channel::WeChat => &[PartialCard, Full],
        }
    }

    fn allowed_text(self) -> &'static str {
        match self {
            Channel::Generic => "20, 32, 33, 40, 51, 52",
            Channel::Alipay | Channel::WeChat => "40 (full), 32 (partial)",
        }
    }

    /// Checks that this channel accepts `code`.
    pub fn check(self, code: ReviseTypeCode) -> Result<(), FieldError> {
        if self.allowed_codes().contains(&code) {
            Ok(())
        } else {
            Err(FieldError::new(
                ReviseTypeCode::FIELD,
                Rule::NotAllowed {
                    value: code.as_str().to_owned(),
                    allowed: self.allowed_text(),
                },
            ))
        }
    }

    /// Parses a code given as text and checks this channel accepts it.
    pub fn parse_code(self, s: &str) -> Result<ReviseTypeCode, FieldError> {
        let code = ReviseTypeCode::parse(s).map_err(|_| {
            FieldError::new(
                ReviseTypeCode::FIELD,
                Rule::NotAllowed {
                    value: s.to_owned(),
                    allowed: self.allowed_text(),
                },
            )
        })?;
        self.check(code)?;
        Ok(code)
    }

    /// The code for a request given as text (e.g. from a command line): `code` if given,
    /// otherwise `40` (full), or `32` when an amount is given (Alipay / WeChat Pay partial,
    /// generic card partial).
    pub fn resolve_code(
        self,
        code: Option<&str>,
        amount_given: bool,
    ) -> Result<ReviseTypeCode, FieldError> {
        match code {
            Some(c) => self.parse_code(c),
            None if amount_given => Ok(ReviseTypeCode::PartialCard),
            None => Ok(ReviseTypeCode::Full),
        }
    }

    /// How a request on this channel is retried after a timeout or a retry code.
    pub fn retry_style(self) -> RetryStyle {
        match self {
            Channel::Generic => RetryStyle::LookUp,
            Channel::Alipay | Channel::WeChat => RetryStyle::SameRequest,
        }
    }

    /// A short name for logs (`generic`, `alipay`, `wechat`).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Generic => "generic",
            Channel::Alipay => "alipay",
            Channel::WeChat => "wechat",
        }
    }
}

/// How a channel's API wants a cancel retried when the outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryStyle {
    /// Alipay / WeChat Pay: resend the identical request: the SAME `shopTransactionId` and the
    /// SAME `cancelReqDate`, even when the Korea date has changed since.
    SameRequest,
    /// Generic: look up every key that may have been processed
    /// (`/api/trades/retrieveTransaction`, after the gateway's processing bound); only when
    /// none was processed, send a new cancel with a NEW `shopTransactionId` (a reused one is a
    /// duplicate) and the current date (`refundQueryFlag = "Y"` only if the policy asks).
    LookUp,
    /// Status queries (`find`): they change nothing, so every resend is a new query with a
    /// new key (a reused one would be a duplicate), and their failure is "status unknown".
    Query,
}

/// Whether a code takes an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountRule {
    /// Partial codes: the amount to cancel is required.
    Required,
    /// Codes that act on the whole payment: an amount would be misleading and is refused.
    Forbidden,
    /// Capture: the captured amount may be given (partial capture) or left out.
    Optional,
}

/// A `reviseTypeCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReviseTypeCode {
    /// `20`: capture an authorized payment (generic only).
    Capture,
    /// `32`: partial cancel of a card / easy-pay payment; the partial code of Alipay and WeChat Pay.
    PartialCard,
    /// `33`: partial cancel of a bank transfer or mobile payment (generic only).
    PartialTransferOrMobile,
    /// `40`: full cancel (including an issued virtual account).
    Full,
    /// `51`: cancel a standalone cash receipt (generic only).
    CashReceipt,
    /// `52`: partially cancel a standalone cash receipt (generic only).
    CashReceiptPartial,
}

impl ReviseTypeCode {
    /// The API's name for this field.
    pub const FIELD: &'static str = "reviseTypeCode";

    /// The code, as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviseTypeCode::Capture => "20",
            ReviseTypeCode::PartialCard => "32",
            ReviseTypeCode::PartialTransferOrMobile => "33",
            ReviseTypeCode::Full => "40",
            ReviseTypeCode::CashReceipt => "51",
            ReviseTypeCode::CashReceiptPartial => "52",
        }
    }

    /// Parses a code of any channel.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Ok(match s {
            "20" => ReviseTypeCode::Capture,
            "32" => ReviseTypeCode::PartialCard,
            "33" => ReviseTypeCode::PartialTransferOrMobile,
            "40" => ReviseTypeCode::Full,
            "51" => ReviseTypeCode::CashReceipt,
            "52" => ReviseTypeCode::CashReceiptPartial,
            other => {
                return Err(FieldError::new(
                    Self::FIELD,
                    Rule::NotAllowed {
                        value: other.to_owned(),
                        allowed: "20, 32, 33, 40, 51, 52",
                    },
                ))
            }
        })
    }

    /// THE rule for amounts: partial codes need one, whole-payment codes refuse one.
    pub fn amount_rule(self) -> AmountRule {
        match self {
            ReviseTypeCode::PartialCard
            | ReviseTypeCode::PartialTransferOrMobile
            | ReviseTypeCode::CashReceiptPartial => AmountRule::Required,
            ReviseTypeCode::Full | ReviseTypeCode::CashReceipt => AmountRule::Forbidden,
            ReviseTypeCode::Capture => AmountRule::Optional,
        }
    }

    /// Whether this code cancels only part of a payment.
    pub fn is_partial(self) -> bool {
        self.amount_rule() == AmountRule::Required
    }

    /// Applies [`ReviseTypeCode::amount_rule`] to an optional amount sent as `field`.
    pub fn check_amount<T>(
        self,
        field: &'static str,
        amount: Option<&T>,
    ) -> Result<(), FieldError> {
        match (self.amount_rule(), amount.is_some()) {
            (AmountRule::Required, false) => Err(FieldError::new(
                field,
                Rule::AmountRequired {
                    code: self.as_str(),
                },
            )),
            (AmountRule::Forbidden, true) => Err(FieldError::new(
                field,
                Rule::AmountNotAllowed {
                    code: self.as_str(),
                },
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for ReviseTypeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ReviseTypeCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ReviseTypeCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ReviseTypeCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 6] = ["20", "32", "33", "40", "51", "52"];

    #[test]
    fn every_code_per_channel() {
        let expect = |ch: Channel, code: &str| match ch {
            Channel::Generic => true,
            Channel::Alipay | Channel::WeChat => code == "40" || code == "32",
        };
        for ch in [Channel::Generic, Channel::Alipay, Channel::WeChat] {
            for code in ALL {
                let r = ch.parse_code(code);
                assert_eq!(r.is_ok(), expect(ch, code), "{ch:?} {code}");
                if let Err(e) = r {
                    assert_eq!(e.field, "reviseTypeCode");
                }
            }
            for bad in ["", "41", "4", "400", "ab", "30"] {
                assert!(ch.parse_code(bad).is_err());
            }
        }
    }

    #[test]
    fn partial_codes_need_an_amount_and_full_codes_refuse_one() {
        for code in ALL {
            let c = ReviseTypeCode::parse(code).unwrap();
            assert_eq!(c.as_str(), code);
            let without = c.check_amount::<u64>("amount", None);
            let with = c.check_amount("amount", Some(&5u64));
            match code {
                "32" | "33" | "52" => {
                    assert!(c.is_partial());
                    assert_eq!(
                        without.unwrap_err(),
                        FieldError::new("amount", Rule::AmountRequired { code: c.as_str() })
                    );
                    assert!(with.is_ok());
                }
                "40" | "51" => {
                    assert!(without.is_ok());
                    assert!(matches!(
                        with.unwrap_err().rule,
                        Rule::AmountNotAllowed { .. }
                    ));
                }
                _ => {
                    assert!(without.is_ok() && with.is_ok());
                }
            }
        }
    }

    #[test]
    fn codes_from_text() {
        let g = Channel::Generic;
        assert_eq!(g.resolve_code(None, false).unwrap(), ReviseTypeCode::Full);
        assert_eq!(
            g.resolve_code(None, true).unwrap(),
            ReviseTypeCode::PartialCard
        );
        assert_eq!(
            g.resolve_code(Some("33"), true).unwrap(),
            ReviseTypeCode::PartialTransferOrMobile
        );
        assert!(Channel::Alipay.resolve_code(Some("33"), true).is_err());
    }

    #[test]
    fn retry_styles() {
        assert_eq!(Channel::Generic.retry_style(), RetryStyle::LookUp);
        assert_eq!(Channel::Alipay.retry_style(), RetryStyle::SameRequest);
        assert_eq!(Channel::WeChat.retry_style(), RetryStyle::SameRequest);
    }
}
