//! A cancel given as text (a command line, a CSV row, a form): named fields instead of a
//! row of positional `Option`s, read by every channel the same way.

use crate::field::{FieldError, Rule};
use crate::money::{Amount, Currency, Money};
use crate::revise::{Channel, ReviseTypeCode};
use crate::text::PgCno;

/// A cancel as a person or a script writes it: the payment, and optionally the
/// `reviseTypeCode`, the amount in major units (`"12.03"`) and its currency.
///
/// Nothing is checked until a channel reads it (`WalletCancel::from_text` in
/// [`wallet`](crate::wallet), `kicc_generic::CancelRequest::from_text`), which
/// returns a [`FieldError`] naming the first field that breaks a rule.
///
/// ```
/// use kicc_core::{CancelText, Channel, Currency, ReviseTypeCode};
///
/// let text = CancelText::new("PG20261121000001").amount("12.03").currency("USD");
/// assert_eq!(text.parse_code(Channel::Alipay)?, ReviseTypeCode::PartialCard); // 32: an amount was given
/// let money = text.parse_money()?.expect("an amount was given");
/// assert_eq!((money.amount.minor_units(), money.currency), (1203, Currency::Usd));
///
/// // Options from a command line go in as they are.
/// let code: Option<&str> = None;
/// let full = CancelText::new("PG20261121000001").code(code);
/// assert_eq!(full.parse_code(Channel::Alipay)?, ReviseTypeCode::Full); // 40
/// # Ok::<(), kicc_core::FieldError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct CancelText<'a> {
    pg_cno: &'a str,
    code: Option<&'a str>,
    amount: Option<&'a str>,
    currency: Option<&'a str>,
}

impl<'a> CancelText<'a> {
    /// A cancel of the payment `pg_cno`: the whole payment unless an amount is given.
    pub fn new(pg_cno: &'a str) -> Self {
        CancelText {
            pg_cno,
            code: None,
            amount: None,
            currency: None,
        }
    }

    /// The `reviseTypeCode` (`"40"`, `"32"`, ...); without it, 40, or 32 when an amount is
    /// given. Takes a `&str` or an `Option<&str>`.
    pub fn code(mut self, code: impl Into<Option<&'a str>>) -> Self {
        self.code = code.into();
        self
    }

    /// The amount to cancel in major units as a person writes it (`"12.03"` USD is 1203
    /// cents, `"1000"` KRW is 1000 won). Takes a `&str` or an `Option<&str>`.
    pub fn amount(mut self, amount: impl Into<Option<&'a str>>) -> Self {
        self.amount = amount.into();
        self
    }

    /// The amount's currency (`KRW`, `USD`). Takes a `&str` or an `Option<&str>`.
    pub fn currency(mut self, currency: impl Into<Option<&'a str>>) -> Self {
        self.currency = currency.into();
        self
    }

    /// The payment, checked as a `pgCno`.
    pub fn parse_pg_cno(&self) -> Result<PgCno, FieldError> {
        PgCno::new(self.pg_cno)
    }

    /// The `reviseTypeCode`, checked against what `channel` accepts (given: parsed; absent:
    /// 40, or 32 when an amount is given).
    pub fn parse_code(&self, channel: Channel) -> Result<ReviseTypeCode, FieldError> {
        channel.resolve_code(self.code, self.amount.is_some())
    }

    /// The amount with its currency (`None` without an amount). An amount needs a currency.
    pub fn parse_money(&self) -> Result<Option<Money>, FieldError> {
        self.money_as("amount")
    }

    /// [`CancelText::parse_money`], reporting a bad amount under `field` (the API's name
    /// for it, e.g. `amountInfo.totAmount`).
    pub(crate) fn money_as(&self, field: &'static str) -> Result<Option<Money>, FieldError> {
        Money::parse_input(field, self.amount, self.currency)
    }

    /// The amount in whole won (`None` without an amount), for channels that only take KRW:
    /// a currency may be left out, and if given must be `KRW`.
    pub fn parse_krw(&self) -> Result<Option<Amount>, FieldError> {
        if let Some(c) = self.currency {
            if Currency::parse("currency", c)? != Currency::Krw {
                return Err(FieldError::new(
                    "currency",
                    Rule::CurrencyMismatch { expected: "KRW" },
                ));
            }
        }
        self.amount
            .map(|a| Amount::parse_major("amount", Currency::Krw, a))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_read_by_its_own_rule() {
        let t = CancelText::new("P1");
        assert_eq!(t.parse_pg_cno().unwrap().as_str(), "P1");
        assert_eq!(t.parse_code(Channel::Generic), Ok(ReviseTypeCode::Full));
        assert_eq!(t.parse_money(), Ok(None));
        assert_eq!(t.parse_krw(), Ok(None));

        assert_eq!(
            CancelText::new("").parse_pg_cno().unwrap_err().field,
            "pgCno"
        );
        // An amount without a currency is not money, but is won where only won is taken.
        let won = CancelText::new("P1").amount("1000");
        assert_eq!(won.parse_money().unwrap_err().field, "currency");
        assert_eq!(
            won.parse_krw().unwrap().map(|a| a.minor_units()),
            Some(1000)
        );
        assert_eq!(
            won.parse_code(Channel::Generic),
            Ok(ReviseTypeCode::PartialCard)
        );
        // Won only: a USD amount is refused by the KRW reading, naming the currency.
        let usd = won.currency("USD");
        assert_eq!(usd.parse_krw().unwrap_err().field, "currency");
        assert_eq!(
            usd.parse_money().unwrap().map(|m| m.amount.minor_units()),
            Some(100_000)
        );
        // A code the channel does not take is refused for that channel only.
        let card_partial = CancelText::new("P1").code("33");
        assert!(card_partial.parse_code(Channel::Generic).is_ok());
        assert!(card_partial.parse_code(Channel::Alipay).is_err());
        // Options pass through unchanged.
        assert_eq!(won.amount(None), CancelText::new("P1"));
    }
}
