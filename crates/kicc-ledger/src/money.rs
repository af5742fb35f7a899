//! Currencies and decimal amounts as a person writes them, converted exactly to minor units.
//!
//! Parsing is kicc-core's (`Amount::parse_major`), so `kicc cancel --amount`, the batch file
//! and the SDK read amounts by one set of rules. No floats anywhere.

use std::fmt;

/// The largest amount accepted, in minor units (12 digits, like KICC's amount fields).
pub(crate) const MAX_MINOR_UNITS: u64 = kicc_core::Amount::MAX;

/// A currency a cancel can be expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Currency {
    /// Korean won: whole won, no minor unit.
    Krw,
    /// US dollar: amounts in cents.
    Usd,
}

impl Currency {
    /// The ISO 4217 code (`KRW`, `USD`).
    pub fn code(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
        }
    }

    /// Decimal places a person writes (0 for KRW, 2 for USD).
    pub fn decimals(self) -> u32 {
        match self {
            Currency::Krw => 0,
            Currency::Usd => 2,
        }
    }

    /// Parses `KRW` or `USD` exactly (case-sensitive, as the API sends them).
    pub fn parse(text: &str) -> Option<Currency> {
        match text {
            "KRW" => Some(Currency::Krw),
            "USD" => Some(Currency::Usd),
            _ => None,
        }
    }

    /// Reads `text`, a decimal in major units of this currency (`"12.03"` USD is 1203 cents,
    /// `"1000"` KRW is 1000 won) and returns minor units, or why it is refused (the rule,
    /// e.g. `is not a valid amount: USD has at most 2 decimal places (cents)`).
    ///
    /// The rules are kicc-core's, in one place ([`kicc_core::Amount::parse_major`]): refused
    /// are empty text, signs, exponents, separators, spaces, a missing integer or fraction
    /// part (`.5`, `5.`), more decimal places than the currency has unless they are zeros
    /// (`"0.105"` USD, `"10.5"` KRW), zero, and more than [`kicc_core::Amount::MAX`].
    ///
    /// ```
    /// use kicc_ledger::Currency;
    /// assert_eq!(Currency::Usd.parse_major("12.03"), Ok(1203));
    /// assert!(Currency::Krw.parse_major("10.5").is_err());
    /// ```
    pub fn parse_major(self, text: &str) -> Result<u64, String> {
        parse_major(self, text)
    }

    /// Writes `minor` units of this currency in major units (`1203` USD as `12.03`).
    ///
    /// ```
    /// use kicc_ledger::Currency;
    /// assert_eq!(Currency::Usd.display_major(1203), "12.03");
    /// assert_eq!(Currency::Krw.display_major(1000), "1000");
    /// ```
    pub fn display_major(self, minor: u64) -> String {
        display_major(self, minor)
    }
}

impl From<Currency> for kicc_core::Currency {
    fn from(currency: Currency) -> Self {
        core_currency(currency)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// [`Currency::parse_major`].
pub(crate) fn parse_major(currency: Currency, text: &str) -> Result<u64, String> {
    kicc_core::Amount::parse_major("amount", core_currency(currency), text)
        .map(kicc_core::Amount::minor_units)
        .map_err(|e| e.rule.to_string())
}

/// kicc-core's currency for `currency`.
pub(crate) fn core_currency(currency: Currency) -> kicc_core::Currency {
    match currency {
        Currency::Krw => kicc_core::Currency::Krw,
        Currency::Usd => kicc_core::Currency::Usd,
    }
}

/// [`Currency::display_major`].
pub(crate) fn display_major(currency: Currency, minor: u64) -> String {
    match currency {
        Currency::Krw => minor.to_string(),
        Currency::Usd => format!("{}.{:02}", minor / 100, minor % 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_cents_exactly() {
        assert_eq!(parse_major(Currency::Usd, "12.03"), Ok(1203));
        assert_eq!(parse_major(Currency::Usd, "0.1"), Ok(10));
        assert_eq!(parse_major(Currency::Usd, "7"), Ok(700));
        assert_eq!(parse_major(Currency::Usd, "1.500"), Ok(150));
        assert!(parse_major(Currency::Usd, "0.105").is_err());
        assert!(parse_major(Currency::Usd, "1e3").is_err());
        assert!(parse_major(Currency::Usd, "-1").is_err());
        assert!(parse_major(Currency::Usd, ".5").is_err());
        assert!(parse_major(Currency::Usd, "5.").is_err());
        assert!(parse_major(Currency::Usd, "1,000").is_err());
        assert!(parse_major(Currency::Usd, " 1").is_err());
        assert!(parse_major(Currency::Usd, "0.00").is_err());
        assert_eq!(display_major(Currency::Usd, 1203), "12.03");
        assert_eq!(display_major(Currency::Usd, 5), "0.05");
    }

    #[test]
    fn krw_whole_won() {
        assert_eq!(parse_major(Currency::Krw, "1000"), Ok(1000));
        assert_eq!(parse_major(Currency::Krw, "1000.0"), Ok(1000));
        assert!(parse_major(Currency::Krw, "10.5").is_err());
        assert_eq!(
            parse_major(Currency::Krw, "999999999999"),
            Ok(MAX_MINOR_UNITS)
        );
        assert!(parse_major(Currency::Krw, "1000000000000").is_err());
        assert!(parse_major(Currency::Krw, "99999999999999999999999").is_err());
        assert!(parse_major(Currency::Krw, "").is_err());
        assert_eq!(display_major(Currency::Krw, 1000), "1000");
    }
}
