//! Money: currencies and amounts in minor units, as integers. No floats anywhere.
//!
//! KRW has no minor unit (amounts are whole won); USD amounts are cents (`$12.03` is `1203`).
//! [`Amount::parse_major`] reads an amount as a person writes it and refuses anything that
//! does not convert exactly.

use std::fmt;

use crate::field::{FieldError, Rule};

/// A currency KICC's Alipay and WeChat Pay APIs accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Currency {
    /// Korean won: no minor unit.
    #[serde(rename = "KRW")]
    Krw,
    /// US dollar: amounts in cents.
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// The ISO 4217 code, as sent.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
        }
    }

    /// How many decimal places a person writes (0 for KRW, 2 for USD).
    pub fn decimals(self) -> u32 {
        match self {
            Currency::Krw => 0,
            Currency::Usd => 2,
        }
    }

    /// Parses `KRW` or `USD` (case-sensitive, as the API sends them), errors under `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, FieldError> {
        match s {
            "KRW" => Ok(Currency::Krw),
            "USD" => Ok(Currency::Usd),
            other => Err(FieldError::new(
                field,
                Rule::NotAllowed {
                    value: other.to_owned(),
                    allowed: "KRW, USD",
                },
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        Currency::parse("currency", s)
    }
}

/// A positive amount in minor units (won for KRW, cents for USD).
///
/// At most [`Amount::MAX`]: far beyond any single payment, and within the range every JSON
/// parser holds exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// The largest accepted amount, in minor units (12 digits, like KICC's amount fields).
    pub const MAX: u64 = 999_999_999_999;

    /// An amount of `minor` units, reporting errors under `field`.
    pub fn new(field: &'static str, minor: u64) -> Result<Self, FieldError> {
        if minor == 0 {
            return Err(FieldError::new(field, Rule::NotPositive));
        }
        if minor > Self::MAX {
            return Err(FieldError::new(
                field,
                Rule::TooLarge {
                    max_minor_units: Self::MAX,
                },
            ));
        }
        Ok(Amount(minor))
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> u64 {
        self.0
    }

    /// Reads an amount as a person writes it, in major units of `currency`:
    /// `"12.03"` USD is 1203 cents, `"0.1"` USD is 10, `"1000"` KRW is 1000 won.
    ///
    /// Refused: signs, exponents, separators, spaces, a missing integer part (`.5`), more
    /// decimal places than the currency has unless they are zeros (`"0.105"` USD, `"10.5"`
    /// KRW), zero, and amounts over [`Amount::MAX`].
    pub fn parse_major(
        field: &'static str,
        currency: Currency,
        text: &str,
    ) -> Result<Self, FieldError> {
        let bad = |why| FieldError::new(field, Rule::Decimal(why));
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int.is_empty() {
            return Err(bad("needs digits before the decimal point"));
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits and one decimal point are allowed"));
        }
        let frac = frac.unwrap_or("");
        if text.ends_with('.') {
            return Err(bad("needs digits after the decimal point"));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits and one decimal point are allowed"));
        }
        let places = currency.decimals() as usize;
        let (kept, extra) = frac.split_at(frac.len().min(places));
        if extra.bytes().any(|b| b != b'0') {
            return Err(bad(match currency {
                Currency::Krw => "KRW has no fractional part (whole won only)",
                Currency::Usd => "USD has at most 2 decimal places (cents)",
            }));
        }
        let too_large = || {
            FieldError::new(
                field,
                Rule::TooLarge {
                    max_minor_units: Amount::MAX,
                },
            )
        };
        let digits = int
            .bytes()
            .chain(kept.bytes())
            .chain(std::iter::repeat_n(b'0', places - kept.len()));
        let mut minor: u64 = 0;
        for b in digits {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        Amount::new(field, minor)
    }

    /// Writes the amount in major units of `currency` (`1203` USD as `12.03`).
    pub fn display_major(self, currency: Currency) -> String {
        match currency {
            Currency::Krw => self.0.to_string(),
            Currency::Usd => format!("{}.{:02}", self.0 / 100, self.0 % 100),
        }
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Amount::new("amount", n).map_err(serde::de::Error::custom)
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// The currency.
    pub currency: Currency,
    /// The amount in the currency's minor units.
    pub amount: Amount,
}

impl Money {
    /// `minor` units of `currency`, errors under `field`.
    pub fn from_minor(
        field: &'static str,
        currency: Currency,
        minor: u64,
    ) -> Result<Self, FieldError> {
        Ok(Money {
            currency,
            amount: Amount::new(field, minor)?,
        })
    }

    /// Reads a person's decimal in `currency` (see [`Amount::parse_major`]).
    pub fn parse_major(
        field: &'static str,
        currency: Currency,
        text: &str,
    ) -> Result<Self, FieldError> {
        Ok(Money {
            currency,
            amount: Amount::parse_major(field, currency, text)?,
        })
    }
}

impl Money {
    /// Reads an optional amount given as text with an optional currency (e.g. from a command
    /// line): an amount needs its currency, and a currency alone means nothing.
    pub fn parse_input(
        field: &'static str,
        amount: Option<&str>,
        currency: Option<&str>,
    ) -> Result<Option<Money>, FieldError> {
        match (amount, currency) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(FieldError::new("currency", Rule::Required)),
            (Some(a), Some(c)) => {
                let currency = Currency::parse("currency", c)?;
                Money::parse_major(field, currency, a).map(Some)
            }
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.amount.display_major(self.currency),
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(s: &str) -> Result<u64, FieldError> {
        Amount::parse_major("amount", Currency::Usd, s).map(Amount::minor_units)
    }
    fn krw(s: &str) -> Result<u64, FieldError> {
        Amount::parse_major("amount", Currency::Krw, s).map(Amount::minor_units)
    }

    #[test]
    fn usd_is_cents() {
        assert_eq!(usd("12.03").unwrap(), 1203);
        assert_eq!(usd("0.1").unwrap(), 10);
        assert_eq!(usd("0.01").unwrap(), 1);
        assert_eq!(usd("50.22").unwrap(), 5022);
        assert_eq!(usd("7").unwrap(), 700);
        assert_eq!(usd("12.030").unwrap(), 1203);
        assert_eq!(usd("0012.03").unwrap(), 1203);
    }

    #[test]
    fn usd_rejects() {
        for bad in [
            "0.105", "0.001", "", ".5", "5.", "-1", "+1", "1e3", "1,000", " 1", "1 ", "1.2.3", "0",
            "0.00", "NaN", "١٢",
        ] {
            assert!(usd(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            usd("0.105").unwrap_err(),
            FieldError::new(
                "amount",
                Rule::Decimal("USD has at most 2 decimal places (cents)")
            )
        );
        assert_eq!(usd("0").unwrap_err().rule, Rule::NotPositive);
    }

    #[test]
    fn krw_is_whole_won() {
        assert_eq!(krw("51004").unwrap(), 51004);
        assert_eq!(krw("1000.00").unwrap(), 1000);
        assert!(matches!(krw("10.5").unwrap_err().rule, Rule::Decimal(_)));
        assert!(krw("0").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(krw("999999999999").unwrap(), Amount::MAX);
        assert!(matches!(
            krw("1000000000000").unwrap_err().rule,
            Rule::TooLarge { .. }
        ));
        assert!(matches!(
            krw("99999999999999999999999").unwrap_err().rule,
            Rule::TooLarge { .. }
        ));
        assert_eq!(usd("9999999999.99").unwrap(), Amount::MAX);
        assert!(matches!(
            usd("10000000000.00").unwrap_err().rule,
            Rule::TooLarge { .. }
        ));
    }

    #[test]
    fn input_needs_a_currency() {
        assert_eq!(Money::parse_input("a", None, Some("USD")).unwrap(), None);
        assert_eq!(
            Money::parse_input("a", Some("1"), None).unwrap_err().field,
            "currency"
        );
        assert_eq!(
            Money::parse_input("a", Some("1"), Some("EUR"))
                .unwrap_err()
                .field,
            "currency"
        );
        let m = Money::parse_input("a", Some("12.03"), Some("USD"))
            .unwrap()
            .unwrap();
        assert_eq!(m.amount.minor_units(), 1203);
    }

    #[test]
    fn display_round_trips() {
        let m = Money::parse_major("amount", Currency::Usd, "12.03").unwrap();
        assert_eq!(m.to_string(), "12.03 USD");
        assert_eq!(
            Amount::new("a", 5).unwrap().display_major(Currency::Usd),
            "0.05"
        );
    }

    #[test]
    fn serde_is_a_plain_integer() {
        let a = Amount::new("amount", 1203).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "1203");
        assert!(serde_json::from_str::<Amount>("0").is_err());
        assert!(serde_json::from_str::<Amount>("12.5").is_err());
        assert_eq!(serde_json::to_string(&Currency::Usd).unwrap(), "\"USD\"");
    }

    proptest! {
        #[test]
        fn usd_major_round_trips(cents in 1u64..=Amount::MAX) {
            let a = Amount::new("amount", cents).unwrap();
            let text = a.display_major(Currency::Usd);
            prop_assert_eq!(usd(&text).unwrap(), cents);
        }

        #[test]
        fn parse_never_panics_and_never_rounds(s in "[0-9.,+-e ]{0,16}") {
            if let Ok(cents) = usd(&s) {
                // Whatever was accepted is exactly the written value.
                let (i, f) = s.split_once('.').unwrap_or((&s, ""));
                let f = format!("{f:0<2}");
                prop_assert!(f[2..].bytes().all(|b| b == b'0'));
                let expect: u128 = format!("{i}{}", &f[..2]).parse().unwrap();
                prop_assert_eq!(u128::from(cents), expect);
            }
        }
    }
}
