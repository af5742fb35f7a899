//! Reading KICC's JSON leniently where the documentation says it varies.
//!
//! Amounts arrive as JSON strings in the provider's examples (`"cancelAmount": "51004"`) and
//! as numbers in real responses; both are accepted. Unknown fields are ignored everywhere.
//! Floats, negatives and non-digit strings are refused: an amount that cannot be read exactly
//! is not guessed at.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

use crate::money::{Amount, Currency};

struct LenientAmount;

impl<'de> Visitor<'de> for LenientAmount {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer amount, as a JSON number or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("a negative amount"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom("an amount with a fractional part"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 19 {
            return Err(E::custom("an amount string that is not a plain integer"));
        }
        t.parse::<u64>()
            .map(Some)
            .map_err(|_| E::custom("an amount out of range"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LenientAmount)
    }
}

/// `#[serde(deserialize_with = "...")]` for an optional amount: number, digit string, `""` or `null`.
pub fn opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(LenientAmount)
}

/// `#[serde(deserialize_with = "...")]` for a required amount: number or digit string.
pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(LenientAmount)?
        .ok_or_else(|| de::Error::custom("a required amount is empty"))
}

/// The common head of every KICC response: code, message and the echoed key.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// `resCd`.
    #[serde(default)]
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `shopTransactionId`, echoed.
    #[serde(default)]
    pub shop_transaction_id: String,
}

impl Envelope {
    /// Reads just the head of a response body; `None` when it is not a JSON object.
    pub fn read(body: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(body).ok()
    }
}

/// `amountInfo` in Alipay / WeChat Pay requests: the currency and the amount in minor units
/// (`totAmount`: USD in cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountInfo {
    /// `currency`: `KRW` or `USD`.
    pub currency: Currency,
    /// `totAmount`, in minor units.
    pub tot_amount: Amount,
}

/// `amountInfo` as responses carry it: tolerant of strings, unknown currencies and gaps.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseAmountInfo {
    /// `currency`, verbatim.
    #[serde(default)]
    pub currency: String,
    /// `totAmount` in minor units (`amount` in the WeChat Pay webhook).
    #[serde(default, deserialize_with = "opt_amount", alias = "amount")]
    pub tot_amount: Option<u64>,
}

/// Decodes `application/x-www-form-urlencoded` text (`%XX` and `+`); malformed escapes are
/// kept as they are, invalid UTF-8 is replaced. Never panics.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "opt_amount")]
        a: Option<u64>,
    }

    #[test]
    fn string_or_number() {
        let p = |s: &str| serde_json::from_str::<T>(s).map(|t| t.a);
        assert_eq!(p(r#"{"a": 51004}"#).unwrap(), Some(51004));
        assert_eq!(p(r#"{"a": "51004"}"#).unwrap(), Some(51004));
        assert_eq!(p(r#"{"a": ""}"#).unwrap(), None);
        assert_eq!(p(r#"{"a": null}"#).unwrap(), None);
        assert_eq!(p(r#"{}"#).unwrap(), None);
        assert!(p(r#"{"a": 1.5}"#).is_err());
        assert!(p(r#"{"a": -3}"#).is_err());
        assert!(p(r#"{"a": "12a"}"#).is_err());
        assert!(p(r#"{"a": "99999999999999999999999"}"#).is_err());
        assert!(p(r#"{"a": true}"#).is_err());
    }

    #[test]
    fn amount_info_both_spellings() {
        let r: ResponseAmountInfo =
            serde_json::from_str(r#"{"currency":"USD","totAmount":5022,"x":1}"#).unwrap();
        assert_eq!(r.tot_amount, Some(5022));
        let r: ResponseAmountInfo =
            serde_json::from_str(r#"{"currency":"KRW","amount":"1000"}"#).unwrap();
        assert_eq!(r.tot_amount, Some(1000));
        let req = AmountInfo {
            currency: Currency::Usd,
            tot_amount: Amount::new("amountInfo.totAmount", 1203).unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"currency":"USD","totAmount":1203}"#
        );
    }

    #[test]
    fn decodes_details() {
        assert_eq!(url_decode("%E8%AE%A2%E5%8D%95+closed"), "订单 closed");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in "\\PC{0,40}") {
            let _ = url_decode(&s);
        }
    }
}
