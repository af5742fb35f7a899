//! The WeChat Pay cancel acceptance.

use kicc_core::message::{interpret_http, KiccResponse};
use kicc_core::retry::Interpreted;
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::ShopTransactionId;

/// KICC's answer to a WeChat Pay cancel. `resCd` 0000 means ACCEPTED, not done: the result
/// arrives at `notifyUrl`, or is asked for with the status query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviseResponse {
    /// `resCd`: `0000` when accepted.
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `shopTransactionId`, echoed.
    #[serde(default)]
    pub shop_transaction_id: String,
    /// `mallId`.
    #[serde(default)]
    pub mall_id: String,
    /// `resDetailMsg`: WeChat Pay's own detail, URL-encoded (see [`ReviseResponse::detail`]).
    #[serde(default)]
    pub res_detail_msg: String,
    /// `pgCno`: the original payment.
    #[serde(default)]
    pub pg_cno: String,
    /// `cancelPgCno`: the cancellation, needed to ask for its status.
    #[serde(default)]
    pub cancel_pg_cno: String,
    /// `transactionDate`, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub transaction_date: String,
    /// `amountInfo { currency, totAmount }`.
    #[serde(default)]
    pub amount_info: Option<ResponseAmountInfo>,
}

impl KiccResponse for ReviseResponse {
    fn res_cd(&self) -> &str {
        &self.res_cd
    }
    fn res_msg(&self) -> &str {
        &self.res_msg
    }
    fn echoed_key(&self) -> &str {
        &self.shop_transaction_id
    }
}

impl ReviseResponse {
    /// Reads an HTTP response to a request keyed `sent_key` (see `kicc_core::message::interpret_http`).
    pub fn read(status: u16, body: &[u8], sent_key: &ShopTransactionId) -> Interpreted<Self> {
        interpret_http(status, body, sent_key)
    }

    /// `resDetailMsg`, URL-decoded.
    pub fn detail(&self) -> String {
        url_decode(&self.res_detail_msg)
    }
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
