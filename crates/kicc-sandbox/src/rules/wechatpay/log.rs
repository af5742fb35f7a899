//! Layer 3, rules (WeChat Pay Global): what the request log
//! (`GET /sandbox/wechatpay/requests`) records of a request.

use http::header::{HeaderValue, AUTHORIZATION};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::routes::{Head, Op, WxRoute};
use crate::wechatpay::crypto::{parse_authorization, AuthParts};
use crate::wechatpay::WechatpayRequestRecord;

/// What the request log records before the outcome is known.
#[derive(Clone, Debug)]
pub(crate) struct LogDraft {
    at: i64,
    path: String,
    order_field: &'static str,
    order_id: String,
    auth: Option<AuthParts>,
    request_sha256: String,
    body: String,
    fault: Option<&'static str>,
}

impl LogDraft {
    pub(crate) fn new(
        at: i64,
        route: &WxRoute,
        head: &Head,
        body: &[u8],
        fault: Option<&'static str>,
    ) -> Self {
        let auth_text = head
            .headers
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let mut hash = Sha256::new();
        for part in [
            head.method.as_str().as_bytes(),
            head.target.as_bytes(),
            auth_text,
            body,
        ] {
            hash.update(part);
            hash.update(b"\n");
        }
        Self {
            at,
            path: head.target.clone(),
            order_field: match route.op {
                Op::Certificates => "",
                Op::Revoke | Op::Query => route.key.field(),
            },
            order_id: percent_decode_str(&route.raw_id)
                .decode_utf8_lossy()
                .into_owned(),
            auth: std::str::from_utf8(auth_text)
                .ok()
                .and_then(|t| parse_authorization(t).ok()),
            request_sha256: hex::encode(hash.finalize()),
            body: String::from_utf8_lossy(body).chars().take(1024).collect(),
            fault,
        }
    }

    /// The log record, once the outcome is known.
    pub(crate) fn finish(
        &self,
        http_status: Option<u16>,
        code: Option<String>,
        processed: bool,
    ) -> WechatpayRequestRecord {
        let auth = self.auth.as_ref();
        WechatpayRequestRecord {
            at: self.at,
            path: self.path.clone(),
            order_field: self.order_field.to_owned(),
            order_id: self.order_id.clone(),
            mchid: auth.map(|a| a.mchid.clone()),
            nonce: auth.map(|a| a.nonce_str.clone()),
            timestamp: auth.map(|a| a.timestamp.clone()),
            serial_no: auth.map(|a| a.serial_no.clone()),
            request_sha256: self.request_sha256.clone(),
            body: self.body.clone(),
            http_status,
            code,
            fault: self.fault.map(str::to_owned),
            processed,
        }
    }
}
