//! Layer 2, state: the faults waiting for calls (one queue for the KICC and
//! the WeChat Pay Global paths), and which kinds apply where.

use crate::model::{Fault, FaultKind};
use crate::routes::{
    is_wechatpay_fault_path, ApiEndpoint, WECHATPAY_REVERSE_BY_ID_PATH,
    WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
};
use crate::state::records::{ActiveFault, FaultEntry, PendingFault};
use crate::state::State;
use crate::wechat_final::{form_encode, WechatFinal};
use crate::SandboxError;

/// How many faults may wait at once per path.
const MAX_QUEUED_FAULTS: usize = 64;

impl State {
    pub(crate) fn inject_fault(&mut self, fault: Fault) -> Result<(), SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidFault { field, rule });
        let on_wechatpay = is_wechatpay_fault_path(&fault.path);
        if ApiEndpoint::from_path(&fault.path).is_none() && !on_wechatpay {
            return invalid(
                "path",
                format!(
                    "must be one of the API paths ({}, {}, {}, or a concrete revoke path), got {:?}",
                    ApiEndpoint::ALL
                        .iter()
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                        .join(", "),
                    WECHATPAY_REVERSE_BY_ID_PATH,
                    WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
                    fault.path
                ),
            );
        }
        check_fault_kind(&fault.kind, on_wechatpay)
            .map_err(|(field, rule)| SandboxError::InvalidFault { field, rule })?;
        if fault.times == 0 || fault.times > 1000 {
            return invalid("times", "must be 1 to 1000".to_owned());
        }
        if let Some(detail) = &fault.res_detail_msg {
            if !matches!(
                fault.kind,
                FaultKind::ResCd(_) | FaultKind::WechatFail { .. }
            ) {
                return invalid(
                    "resDetailMsg",
                    "applies only to the resCd and wechatFail kinds".to_owned(),
                );
            }
            if form_encode(detail).len() > 1024 {
                return invalid(
                    "resDetailMsg",
                    "must be at most 1024 bytes once URL-encoded".to_owned(),
                );
            }
        }
        match &fault.kind {
            FaultKind::ResCd(code) | FaultKind::WechatFail { res_cd: code } => {
                if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return invalid("resCd", "must be 4 ASCII letters or digits".to_owned());
                }
                if code == "0000" {
                    return invalid(
                        "resCd",
                        "must not be 0000 (a success that did nothing would mislead)".to_owned(),
                    );
                }
                if let FaultKind::WechatFail { res_cd } = &fault.kind {
                    self.queue_wechat_final(
                        &fault,
                        WechatFinal::Fail {
                            res_cd: res_cd.clone(),
                            res_detail_msg: fault.res_detail_msg.clone(),
                        },
                    )?;
                    return Ok(());
                }
            }
            FaultKind::WechatVoid => {
                self.queue_wechat_final(&fault, WechatFinal::Void)?;
                return Ok(());
            }
            FaultKind::WithholdWebhook => {
                if fault.path != ApiEndpoint::WechatRevise.path() {
                    return invalid(
                        "kind",
                        format!(
                            "withholdWebhook applies only to {}",
                            ApiEndpoint::WechatRevise.path()
                        ),
                    );
                }
                if fault.apply == Some(false) {
                    return invalid(
                        "apply",
                        "withholdWebhook always lets the cancel through".to_owned(),
                    );
                }
                self.withhold_webhooks = self.withhold_webhooks.saturating_add(fault.times);
                return Ok(());
            }
            FaultKind::Timeout
            | FaultKind::Http500
            | FaultKind::Drop
            | FaultKind::BadSignature
            | FaultKind::SignatureProbe
            | FaultKind::OldTimestamp
            | FaultKind::WechatpayCode { .. } => {}
        }
        let queue = self.faults.entry(fault.path.clone()).or_default();
        if queue.len() >= MAX_QUEUED_FAULTS {
            return invalid(
                "path",
                format!("already has {MAX_QUEUED_FAULTS} faults waiting"),
            );
        }
        let apply = fault.apply.unwrap_or_else(|| fault.kind.default_apply());
        queue.push_back(FaultEntry {
            kind: fault.kind,
            remaining: fault.times,
            apply,
            res_detail_msg: fault.res_detail_msg,
        });
        Ok(())
    }

    /// Queues a `wechatFail` / `wechatVoid` fault for accepted WeChat cancels.
    fn queue_wechat_final(
        &mut self,
        fault: &Fault,
        final_as: WechatFinal,
    ) -> Result<(), SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidFault { field, rule });
        let wechat = ApiEndpoint::WechatRevise.path();
        if fault.path != wechat {
            return invalid(
                "kind",
                format!("{} applies only to {wechat}", fault.kind.name()),
            );
        }
        if fault.apply == Some(false) {
            return invalid(
                "apply",
                format!(
                    "{} changes how an accepted cancel ends; the cancel always goes through",
                    fault.kind.name()
                ),
            );
        }
        if self.wechat_finals.len() >= MAX_QUEUED_FAULTS {
            return invalid(
                "path",
                format!("already has {MAX_QUEUED_FAULTS} wechatFail/wechatVoid faults waiting"),
            );
        }
        self.wechat_finals.push(final_as, fault.times);
        Ok(())
    }

    /// How the next accepted WeChat cancel finishes (consumes one fault).
    pub(crate) fn take_wechat_final(&mut self) -> WechatFinal {
        self.wechat_finals.take()
    }

    /// Consumes one call's worth of the first fault waiting on `path`.
    pub(crate) fn take_fault(&mut self, path: &str) -> Option<ActiveFault> {
        let queue = self.faults.get_mut(path)?;
        let front = queue.front_mut()?;
        let hit = ActiveFault {
            kind: front.kind.clone(),
            apply: front.apply,
            res_detail_msg: front.res_detail_msg.clone(),
        };
        front.remaining = front.remaining.saturating_sub(1);
        if front.remaining == 0 {
            queue.pop_front();
        }
        Some(hit)
    }

    /// The faults still waiting: (path, kind, calls left, apply, detail).
    pub(crate) fn pending_faults(&self) -> Vec<PendingFault> {
        let mut out: Vec<_> = self
            .faults
            .iter()
            .flat_map(|(path, q)| {
                q.iter().map(move |f| PendingFault {
                    path: path.clone(),
                    kind: f.kind.clone(),
                    times: f.remaining,
                    apply: f.apply,
                    res_detail_msg: f.res_detail_msg.clone(),
                })
            })
            .collect();
        let wechat = ApiEndpoint::WechatRevise.path();
        if self.withhold_webhooks > 0 {
            out.push(PendingFault {
                path: wechat.to_owned(),
                kind: FaultKind::WithholdWebhook,
                times: self.withhold_webhooks,
                apply: true,
                res_detail_msg: None,
            });
        }
        for (kind, times, res_detail_msg) in self.wechat_finals.pending() {
            out.push(PendingFault {
                path: wechat.to_owned(),
                kind,
                times,
                apply: true,
                res_detail_msg,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Whether the next accepted WeChat cancel's notices are withheld (consumes one).
    pub(crate) fn take_withhold(&mut self) -> bool {
        if self.withhold_webhooks > 0 {
            self.withhold_webhooks -= 1;
            true
        } else {
            false
        }
    }
}

/// Which fault kinds apply where; `(field, rule)` on a misfit.
pub(crate) fn check_fault_kind(
    kind: &FaultKind,
    on_wechatpay: bool,
) -> Result<(), (&'static str, String)> {
    match kind {
        FaultKind::Timeout | FaultKind::Http500 | FaultKind::Drop => Ok(()),
        FaultKind::ResCd(_)
        | FaultKind::WithholdWebhook
        | FaultKind::WechatFail { .. }
        | FaultKind::WechatVoid => {
            if on_wechatpay {
                Err((
                    "kind",
                    format!(
                        "{} applies only to the KICC endpoints; on the WeChat Pay revoke path use code",
                        kind.name()
                    ),
                ))
            } else {
                Ok(())
            }
        }
        FaultKind::BadSignature
        | FaultKind::SignatureProbe
        | FaultKind::OldTimestamp
        | FaultKind::WechatpayCode { .. }
            if !on_wechatpay =>
        {
            Err((
                "kind",
                format!(
                    "{} applies only to the WeChat Pay revoke paths ({WECHATPAY_REVERSE_BY_ID_PATH}, {WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH})",
                    kind.name()
                ),
            ))
        }
        FaultKind::WechatpayCode { code, http_status } => {
            let shape_ok = (1..=32).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !shape_ok {
                return Err((
                    "code",
                    "must be 1 to 32 characters from A-Z, 0-9 and _ (e.g. SYSTEM_ERROR)".to_owned(),
                ));
            }
            if http_status.is_some_and(|s| !(400..=599).contains(&s)) {
                return Err((
                    "httpStatus",
                    "must be an error status, 400 to 599".to_owned(),
                ));
            }
            Ok(())
        }
        FaultKind::BadSignature | FaultKind::SignatureProbe | FaultKind::OldTimestamp => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_kinds_fit_their_paths() {
        let code = |c: &str, s| FaultKind::WechatpayCode {
            code: c.to_owned(),
            http_status: s,
        };
        assert!(check_fault_kind(&code("SYSTEM_ERROR", None), true).is_ok());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", Some(503)), true).is_ok());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", Some(200)), true).is_err());
        assert!(check_fault_kind(&code("system error", None), true).is_err());
        assert!(check_fault_kind(&code("", None), true).is_err());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", None), false).is_err());
        assert!(check_fault_kind(&FaultKind::BadSignature, false).is_err());
        assert!(check_fault_kind(&FaultKind::ResCd("A212".into()), true).is_err());
        assert!(check_fault_kind(&FaultKind::WithholdWebhook, true).is_err());
        assert!(check_fault_kind(&FaultKind::Drop, true).is_ok());
        assert!(check_fault_kind(&FaultKind::Drop, false).is_ok());
    }
}
