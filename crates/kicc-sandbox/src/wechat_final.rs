//! How an accepted WeChat cancel finishes: applied (the normal case), failed
//! (`wechatFail`) or voided (`wechatVoid`, `TS12`), and the notice it sends.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use crate::model::{Currency, FaultKind};

/// The `resMsg` of a failed WeChat cancel.
pub(crate) const FAILED_MSG: &str = "Cancellation failed (sandbox fault)";

/// The final result an accepted WeChat cancel is headed for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum WechatFinal {
    /// Applied: `TS02` / `TS06`, notice `0000`.
    #[default]
    Apply,
    /// Failed: the held amount is released; notice and `find` carry `res_cd`.
    Fail {
        res_cd: String,
        res_detail_msg: Option<String>,
    },
    /// Network cancel (void): applied, status `TS12`, notice `0000`.
    Void,
}

/// `wechatFail` / `wechatVoid` faults waiting for the next accepted cancels.
#[derive(Debug, Default)]
pub(crate) struct WechatFinalQueue {
    queue: VecDeque<(WechatFinal, u32)>,
}

impl WechatFinalQueue {
    /// Queues `times` cancels finishing as `final_as`.
    pub(crate) fn push(&mut self, final_as: WechatFinal, times: u32) {
        self.queue.push_back((final_as, times));
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// How the next accepted cancel finishes (consumes one).
    pub(crate) fn take(&mut self) -> WechatFinal {
        let Some((final_as, left)) = self.queue.front_mut() else {
            return WechatFinal::Apply;
        };
        let out = final_as.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.queue.pop_front();
        }
        out
    }

    /// The faults waiting: (kind, cancels left, detail).
    pub(crate) fn pending(&self) -> Vec<(FaultKind, u32, Option<String>)> {
        self.queue
            .iter()
            .map(|(f, left)| match f {
                WechatFinal::Fail {
                    res_cd,
                    res_detail_msg,
                } => (
                    FaultKind::WechatFail {
                        res_cd: res_cd.clone(),
                    },
                    *left,
                    res_detail_msg.clone(),
                ),
                WechatFinal::Void | WechatFinal::Apply => (FaultKind::WechatVoid, *left, None),
            })
            .collect()
    }
}

/// Percent-encodes every byte but the RFC 3986 unreserved characters (a
/// space is `%20`): the `resDetailMsg` of the sandbox's own rule errors.
pub(crate) fn url_encode(s: &str) -> String {
    encode(s, false)
}

/// Form-style URL encoding (`application/x-www-form-urlencoded`): a space is
/// `+`, RFC 3986 unreserved characters stay, every other byte is `%XX`.
pub(crate) fn form_encode(s: &str) -> String {
    encode(s, true)
}

fn encode(s: &str, form: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if form && b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a finished cancel's notice says.
pub(crate) struct NoticeFields<'a> {
    pub(crate) mall_id: &'a str,
    pub(crate) shop_order_no: &'a str,
    pub(crate) pg_cno: &'a str,
    pub(crate) cancel_pg_cno: &'a str,
    pub(crate) cancel_date: &'a str,
    pub(crate) currency: Currency,
    pub(crate) amount: u64,
}

/// The notice body: `resCd` `0000` unless the cancel failed, then its code,
/// message and a form-encoded `resDetailMsg`.
pub(crate) fn notice_body(
    n: &NoticeFields<'_>,
    failure: Option<&(String, Option<String>)>,
) -> Value {
    let mut out = Map::new();
    match failure {
        None => {
            out.insert("resCd".into(), "0000".into());
            out.insert("resMsg".into(), "Success".into());
        }
        Some((code, detail)) => {
            out.insert("resCd".into(), code.clone().into());
            out.insert("resMsg".into(), FAILED_MSG.into());
            out.insert(
                "resDetailMsg".into(),
                form_encode(detail.as_deref().unwrap_or(FAILED_MSG)).into(),
            );
        }
    }
    let rest = json!({
        "mallId": n.mall_id,
        "shopOrderNo": n.shop_order_no,
        "pgCno": n.pg_cno,
        "cancelPgCno": n.cancel_pg_cno,
        "cancelDate": n.cancel_date,
        "amountInfo": {"currency": n.currency.as_str(), "amount": n.amount},
    });
    if let Value::Object(rest) = rest {
        out.extend(rest);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b/c"), "a+b%2Fc");
        assert_eq!(form_encode("가+%\n"), "%EA%B0%80%2B%25%0A");
        assert_eq!(form_encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(url_encode("a b/가"), "a%20b%2F%EA%B0%80");
    }

    #[test]
    fn queue_consumes_in_order() {
        let mut q = WechatFinalQueue::default();
        q.push(WechatFinal::Void, 2);
        q.push(
            WechatFinal::Fail {
                res_cd: "W001".into(),
                res_detail_msg: None,
            },
            1,
        );
        assert_eq!(q.take(), WechatFinal::Void);
        assert_eq!(q.pending().len(), 2);
        assert_eq!(q.take(), WechatFinal::Void);
        assert!(matches!(q.take(), WechatFinal::Fail { .. }));
        assert_eq!(q.take(), WechatFinal::Apply);
        assert_eq!(q.len(), 0);
    }
}
