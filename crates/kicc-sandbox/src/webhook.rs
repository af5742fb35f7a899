//! Layer 4, IO: applying accepted WeChat cancels after the delay and
//! delivering their notices.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};

use crate::model::WebhookDelivery;
use crate::rules::common::FinalizeJob;
use crate::shared::{wait_shutdown, Shared};
use crate::state::Notice;

/// Largest acknowledgement body read from a receiver.
const MAX_ACK_BODY: usize = 64 * 1024;

/// Applies `job` after the configured delay, then delivers its notice. The
/// task ends when the sandbox shuts down or is reset.
pub(crate) fn spawn_finalize(shared: Arc<Shared>, job: FinalizeJob) {
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = finalize_and_notify(&shared, &job) => {}
            () = wait_shutdown(&mut shutdown) => {}
        }
    });
}

async fn finalize_and_notify(shared: &Shared, job: &FinalizeJob) {
    tokio::time::sleep(shared.webhook_delay).await;
    let notice = shared.lock().finalize_wechat(
        job.generation,
        &job.pg_cno,
        &job.cancel_pg_cno,
        &shared.mall_id,
    );
    let Some(notice) = notice else {
        return;
    };
    let uri = match loopback_http_uri(&notice.url) {
        Ok(uri) => uri,
        Err(why) => {
            tracing::warn!(url = %notice.url, "webhook not sent: {why}");
            let mut st = shared.lock();
            let at = st.now().datetime_string();
            st.log_delivery(entry(
                &notice,
                0,
                at,
                None,
                false,
                Some(format!("not sent: {why}")),
            ));
            return;
        }
    };
    for attempt in 1..=shared.webhook_max_attempts {
        if shared.lock().generation != job.generation {
            return;
        }
        let (status, acknowledged, error) = deliver_once(shared, &uri, notice.body.clone()).await;
        {
            let mut st = shared.lock();
            if st.generation != job.generation {
                return;
            }
            let at = st.now().datetime_string();
            st.log_delivery(entry(&notice, attempt, at, status, acknowledged, error));
        }
        if acknowledged {
            return;
        }
        if attempt < shared.webhook_max_attempts {
            tokio::time::sleep(shared.webhook_retry_interval).await;
        }
    }
}

fn entry(
    notice: &Notice,
    attempt: u32,
    at: String,
    http_status: Option<u16>,
    acknowledged: bool,
    error: Option<String>,
) -> WebhookDelivery {
    WebhookDelivery {
        pg_cno: notice.pg_cno.clone(),
        cancel_pg_cno: notice.cancel_pg_cno.clone(),
        url: notice.url.clone(),
        attempt,
        at,
        http_status,
        acknowledged,
        error,
    }
}

/// One delivery: (HTTP status if any, acknowledged, why not).
async fn deliver_once(
    shared: &Shared,
    uri: &Uri,
    body: Bytes,
) -> (Option<u16>, bool, Option<String>) {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri.clone();
    req.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let exchange = async {
        let resp = shared
            .client
            .request(req)
            .await
            .map_err(|e| (None, format!("request failed: {e}")))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_ACK_BODY)
            .collect()
            .await
            .map_err(|e| (Some(status), format!("reading the answer failed: {e}")))?
            .to_bytes();
        Ok::<_, (Option<StatusCode>, String)>((status, bytes))
    };
    match tokio::time::timeout(shared.webhook_timeout, exchange).await {
        Err(_) => (
            None,
            false,
            Some(format!(
                "no answer within {} ms",
                shared.webhook_timeout.as_millis()
            )),
        ),
        Ok(Err((status, why))) => (status.map(|s| s.as_u16()), false, Some(why)),
        Ok(Ok((status, bytes))) => {
            let code = status.as_u16();
            if status != StatusCode::OK {
                return (Some(code), false, Some(format!("HTTP {code}")));
            }
            match is_ack(&bytes) {
                Ok(()) => (Some(code), true, None),
                Err(why) => (Some(code), false, Some(why)),
            }
        }
    }
}

/// Whether a receiver's answer acknowledges: JSON with `resCd` `"0000"`.
fn is_ack(body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "answer is not JSON with resCd \"0000\"".to_owned())?;
    match value.get("resCd").and_then(serde_json::Value::as_str) {
        Some("0000") => Ok(()),
        Some(other) => Err(format!("answer has resCd {other}, not 0000")),
        None => Err("answer has no resCd".to_owned()),
    }
}

/// The sandbox only ever sends to plain-HTTP loopback addresses.
pub(crate) fn loopback_http_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| "notifyUrl is not a valid absolute URL".to_owned())?;
    if uri.scheme_str() != Some("http") {
        return Err("the sandbox delivers notices over plain http only".to_owned());
    }
    let host = uri
        .host()
        .ok_or_else(|| "notifyUrl has no host".to_owned())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "the sandbox delivers notices to loopback hosts only, not {host}"
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080/hook",
            "http://127.1.2.3/x",
            "http://localhost:1/",
            "http://[::1]:9/n",
        ] {
            assert!(loopback_http_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "http://example.com/hook",
            "http://localhost.example.com/",
            "ftp://127.0.0.1/",
            "/relative",
            "not a url",
            "",
        ] {
            assert!(loopback_http_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acknowledgement_rules() {
        assert!(is_ack(br#"{"resCd":"0000","resMsg":"ok"}"#).is_ok());
        assert!(is_ack(br#"{"resCd":"9999"}"#).is_err());
        assert!(is_ack(br#"{"resMsg":"ok"}"#).is_err());
        assert!(is_ack(b"OK").is_err());
        assert!(is_ack(br#"{"resCd":0}"#).is_err());
    }
}
