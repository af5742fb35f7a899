//! Layer 4, IO: the one path every provider call takes, KICC and WeChat Pay
//! Global alike: take the fault waiting on its path (if any), run the rules
//! under the state lock, and answer as the fault says (stall, HTTP 500,
//! dropped connection, an injected error, a wrong signature).
//!
//! What differs between the two families is behind [`Endpoint`]: how the
//! rules run, what an injected answer looks like, whether the request log
//! records it and how the answer is rendered (signed or not).

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;

use crate::model::FaultKind;
use crate::routes::{ApiEndpoint, Head, WxRoute};
use crate::rules::common::{fault_body, Ctx};
use crate::rules::kicc;
use crate::rules::wechatpay::answer::{code_answer, Answer};
use crate::rules::wechatpay::endpoint;
use crate::rules::wechatpay::log::LogDraft;
use crate::rules::wechatpay::sign::{signed_response, Signing};
use crate::shared::{json_error, respond, DropConnection, Resp, Shared, JSON};
use crate::state::{ActiveFault, State};
use crate::webhook;

/// How an answer is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    /// As the rules made it.
    Normal,
    /// Signed wrongly, as a signature fault says (WeChat Pay only).
    Signature(Signing),
}

/// One provider call, as the fault path sees it.
trait Endpoint: Send + Sync + 'static {
    /// What the rules answer.
    type Answer: Send + 'static;

    /// The path as sent (for tracing).
    fn path(&self) -> &str;
    /// Takes one call's worth of the fault waiting on this call's path.
    fn take_fault(&mut self, st: &mut State) -> Option<ActiveFault>;
    /// Runs the rules (atomically) and schedules their background work.
    fn process(&self, shared: &Arc<Shared>) -> Self::Answer;
    /// The answer of a fault kind this endpoint answers itself, if `kind` is
    /// one (KICC `resCd`, WeChat Pay `code`).
    fn injected(&self, kind: &FaultKind, detail: Option<&str>) -> Option<Self::Answer>;
    /// How a fault kind signs the answer, if it is a signature fault here.
    fn look(&self, kind: &FaultKind) -> Option<Signing>;
    /// The answer to send when a signature fault does not apply: a success
    /// that did nothing (a forgery).
    fn forged(&self) -> Self::Answer;
    /// Records the outcome in the request log (WeChat Pay only).
    fn record(
        &self,
        shared: &Shared,
        answer: Option<&Self::Answer>,
        status: Option<u16>,
        processed: bool,
    );
    /// The response to send.
    fn render(&self, shared: &Shared, answer: &Self::Answer, look: Look) -> Resp;
}

/// A call to a KICC endpoint.
pub(crate) struct KiccCall {
    pub(crate) ep: ApiEndpoint,
    pub(crate) body: Bytes,
}

impl Endpoint for KiccCall {
    type Answer = Bytes;

    fn path(&self) -> &str {
        self.ep.path()
    }

    fn take_fault(&mut self, st: &mut State) -> Option<ActiveFault> {
        st.take_fault(self.ep.path())
    }

    fn process(&self, shared: &Arc<Shared>) -> Bytes {
        let ctx = Ctx {
            mall_id: &shared.mall_id,
            secret: &shared.secret,
        };
        let out = {
            let mut st = shared.lock();
            let now = st.now();
            kicc::handle(self.ep, &mut st, &ctx, now, &self.body)
        };
        for job in out.jobs {
            webhook::spawn_finalize(Arc::clone(shared), job);
        }
        out.body
    }

    fn injected(&self, kind: &FaultKind, detail: Option<&str>) -> Option<Bytes> {
        match kind {
            FaultKind::ResCd(code) => Some(fault_body(self.ep, code, detail, &self.body)),
            _ => None,
        }
    }

    fn look(&self, _kind: &FaultKind) -> Option<Signing> {
        None
    }

    fn forged(&self) -> Bytes {
        Bytes::new()
    }

    fn record(&self, _: &Shared, _: Option<&Bytes>, _: Option<u16>, _: bool) {}

    fn render(&self, _shared: &Shared, answer: &Bytes, _look: Look) -> Resp {
        respond(StatusCode::OK, JSON, answer.clone())
    }
}

/// A call to a WeChat Pay Global endpoint.
pub(crate) struct WechatpayCall {
    pub(crate) route: WxRoute,
    pub(crate) head: Head,
    pub(crate) body: Bytes,
    /// What the request log will record (made when the call arrives).
    draft: Option<LogDraft>,
}

impl WechatpayCall {
    pub(crate) fn new(route: WxRoute, head: Head, body: Bytes) -> Self {
        Self {
            route,
            head,
            body,
            draft: None,
        }
    }
}

impl Endpoint for WechatpayCall {
    type Answer = Answer;

    fn path(&self) -> &str {
        &self.route.path
    }

    fn take_fault(&mut self, st: &mut State) -> Option<ActiveFault> {
        // A concrete path first, then the template of its form.
        let fault = st
            .take_fault(&self.route.path)
            .or_else(|| st.take_fault(self.route.template()));
        self.draft = Some(LogDraft::new(
            st.unix_now(),
            &self.route,
            &self.head,
            &self.body,
            fault.as_ref().map(|f| f.kind.name()),
        ));
        fault
    }

    fn process(&self, shared: &Arc<Shared>) -> Answer {
        let mut st = shared.lock();
        let now = st.unix_now();
        endpoint::process(
            &mut st,
            &shared.wechatpay,
            now,
            &self.route,
            &self.head,
            &self.body,
        )
    }

    fn injected(&self, kind: &FaultKind, _detail: Option<&str>) -> Option<Answer> {
        match kind {
            FaultKind::WechatpayCode { code, http_status } => Some(code_answer(code, *http_status)),
            _ => None,
        }
    }

    fn look(&self, kind: &FaultKind) -> Option<Signing> {
        match kind {
            FaultKind::BadSignature => Some(Signing::Bad),
            FaultKind::SignatureProbe => Some(Signing::Probe),
            FaultKind::OldTimestamp => Some(Signing::Old),
            _ => None,
        }
    }

    fn forged(&self) -> Answer {
        Answer::no_content()
    }

    fn record(
        &self,
        shared: &Shared,
        answer: Option<&Answer>,
        status: Option<u16>,
        processed: bool,
    ) {
        let Some(draft) = &self.draft else {
            return;
        };
        let (status, code) = match answer {
            Some(a) => (Some(a.status.as_u16()), a.code.clone()),
            None => (status, None),
        };
        let record = draft.finish(status, code, processed);
        shared.lock().wx.log(record);
    }

    fn render(&self, shared: &Shared, answer: &Answer, look: Look) -> Resp {
        let signing = match look {
            Look::Normal => Signing::Normal,
            Look::Signature(s) => s,
        };
        let mut st = shared.lock();
        signed_response(&mut st, &shared.wechatpay, answer, signing).map(Full::new)
    }
}

/// Serves a KICC call.
pub(crate) async fn serve_kicc(
    shared: Arc<Shared>,
    ep: ApiEndpoint,
    body: Bytes,
) -> Result<Resp, DropConnection> {
    serve(shared, KiccCall { ep, body }).await
}

/// Serves a WeChat Pay Global call.
pub(crate) async fn serve_wechatpay(
    shared: Arc<Shared>,
    route: WxRoute,
    head: Head,
    body: Bytes,
) -> Result<Resp, DropConnection> {
    serve(shared, WechatpayCall::new(route, head, body)).await
}

/// The fault path: answers one call, applying the fault waiting on its path.
async fn serve<E: Endpoint>(shared: Arc<Shared>, mut call: E) -> Result<Resp, DropConnection> {
    let fault = call.take_fault(&mut shared.lock());
    let Some(fault) = fault else {
        let answer = call.process(&shared);
        call.record(&shared, Some(&answer), None, true);
        return Ok(call.render(&shared, &answer, Look::Normal));
    };
    tracing::debug!(
        path = call.path(),
        kind = fault.kind.name(),
        apply = fault.apply,
        "injected fault"
    );
    let apply = fault.apply;
    match fault.kind {
        FaultKind::Timeout => {
            if apply {
                // Logged when processed, so the log shows it before any retry.
                let answer = call.process(&shared);
                call.record(&shared, Some(&answer), None, true);
                shared.stall().await;
                return Ok(call.render(&shared, &answer, Look::Normal));
            }
            // Processed at the end of the stall, even if the client has gone
            // by then (as a gateway that finishes late would), and so within
            // the processing bound (the delay fits in it). A shutdown during
            // the stall drops the request unprocessed.
            let call = Arc::new(call);
            let task = {
                let (shared, call) = (Arc::clone(&shared), Arc::clone(&call));
                tokio::spawn(async move {
                    if shared.stall().await {
                        Some(call.process(&shared))
                    } else {
                        None
                    }
                })
            };
            match task.await {
                Ok(Some(answer)) => {
                    call.record(&shared, Some(&answer), None, true);
                    Ok(call.render(&shared, &answer, Look::Normal))
                }
                Ok(None) | Err(_) => {
                    call.record(&shared, None, Some(503), false);
                    Ok(json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "sandbox is shutting down",
                    ))
                }
            }
        }
        FaultKind::Http500 => {
            if apply {
                call.process(&shared);
            }
            call.record(&shared, None, Some(500), apply);
            Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"Internal Server Error (injected by the sandbox)"),
            ))
        }
        FaultKind::Drop => {
            if apply {
                call.process(&shared);
            }
            call.record(&shared, None, None, apply);
            Err(DropConnection)
        }
        kind => {
            if let Some(signing) = call.look(&kind) {
                // Without `apply` the answer is a success that did nothing.
                let answer = if apply {
                    call.process(&shared)
                } else {
                    call.forged()
                };
                call.record(&shared, Some(&answer), None, apply);
                return Ok(call.render(&shared, &answer, Look::Signature(signing)));
            }
            if let Some(answer) = call.injected(&kind, fault.res_detail_msg.as_deref()) {
                if apply {
                    call.process(&shared);
                }
                call.record(&shared, Some(&answer), None, apply);
                return Ok(call.render(&shared, &answer, Look::Normal));
            }
            // A kind that does not apply on this path (refused when injected,
            // or consumed elsewhere, as the WeChat cancel kinds): answer normally.
            let answer = call.process(&shared);
            call.record(&shared, Some(&answer), None, true);
            Ok(call.render(&shared, &answer, Look::Normal))
        }
    }
}
