//! A transport wrapper that watches every attempt: it records what was sent and answered (for
//! the demo's "retried with the same key" check) and, when stderr is a terminal, says what is
//! happening during long waits (slow answers, retries). It never records a body, the secret key
//! or `msgAuthValue`: only the path, the attempt's `shopTransactionId` and the result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kicc_core::wire::Envelope;
use kicc_core::{classify, Channel, ResponseClass};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};

/// How often a slow attempt reports that it is still waiting.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(5);

/// One attempt, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The request path.
    pub path: String,
    /// 1 for the first request to this path, 2 for the next, ...
    pub number: u32,
    /// The `shopTransactionId` the request carried (empty if none).
    pub shop_transaction_id: String,
    /// The answer's `resCd`, when it had one.
    pub res_cd: Option<String>,
    /// A short description of the result (`HTTP 200 resCd A212`, `connection lost: ...`).
    pub result: String,
}

/// Wraps a transport; see the module docs.
#[derive(Debug)]
pub struct Observed<T> {
    inner: T,
    progress: bool,
    counts: Mutex<HashMap<String, u32>>,
    log: Mutex<Vec<Attempt>>,
}

impl<T> Observed<T> {
    /// Watches `inner`; prints progress to stderr when `progress` is set.
    pub fn new(inner: T, progress: bool) -> Self {
        Observed {
            inner,
            progress,
            counts: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Every attempt so far, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The KICC channel a path belongs to, for reading its codes.
fn channel_of(path: &str) -> Option<Channel> {
    match path {
        kicc_generic::PATH => Some(Channel::Generic),
        kicc_alipay::PATH => Some(Channel::Alipay),
        kicc_wechat::PATH | kicc_wechat::FIND_PATH => Some(Channel::WeChat),
        _ => None,
    }
}

/// Whether an attempt's result means the client will probably try again.
fn looks_retryable(path: &str, result: &Result<HttpResponse, TransportError>) -> bool {
    match result {
        Err(_) => true,
        Ok(r) if r.status().is_server_error() => true,
        Ok(r) => match (channel_of(path), Envelope::read(r.body())) {
            (Some(ch), Some(env)) if r.status().as_u16() == 200 => matches!(
                classify(ch, &env.res_cd),
                ResponseClass::RetrySameRequest | ResponseClass::ResendWithRefundQuery
            ),
            _ => false,
        },
    }
}

impl<T: Transport> Transport for Observed<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let path = request.uri().path().to_owned();
        let key = Envelope::read(request.body())
            .map(|e| e.shop_transaction_id)
            .unwrap_or_default();
        let number = {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let n = counts.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if self.progress && number > 1 {
            eprintln!("kicc: {path}: attempt {number} (shopTransactionId {key})");
        }
        let started = Instant::now();
        let send = self.inner.send(request);
        tokio::pin!(send);
        let result = loop {
            tokio::select! {
                r = &mut send => break r,
                () = tokio::time::sleep(STILL_WAITING_EVERY), if self.progress => {
                    eprintln!(
                        "kicc: {path}: attempt {number}: still waiting for the answer ({} s)",
                        started.elapsed().as_secs()
                    );
                }
            }
        };
        let (summary, res_cd) = match &result {
            Ok(r) => {
                let code = Envelope::read(r.body())
                    .map(|e| e.res_cd)
                    .filter(|c| !c.is_empty());
                let summary = match &code {
                    Some(c) => format!("HTTP {} resCd {c}", r.status().as_u16()),
                    None => format!("HTTP {}", r.status().as_u16()),
                };
                (summary, code)
            }
            Err(e) => (e.to_string(), None),
        };
        if self.progress && looks_retryable(&path, &result) {
            eprintln!("kicc: {path}: attempt {number}: {summary}; retrying if the API allows it");
        }
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Attempt {
                path,
                number,
                shop_transaction_id: key,
                res_cd,
                result: summary,
            });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Answers each request with the next canned body.
    struct Canned(Mutex<Vec<&'static str>>);

    impl Transport for Canned {
        async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
            let body = self.0.lock().unwrap().remove(0);
            Ok(http::Response::new(Bytes::from_static(body.as_bytes())))
        }
    }

    fn request(key: &str) -> HttpRequest {
        http::Request::post(format!("http://127.0.0.1:1{}", kicc_alipay::PATH))
            .body(Bytes::from(format!(
                r#"{{"shopTransactionId":"{key}","msgAuthValue":"secret-ish"}}"#
            )))
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn records_keys_and_codes_but_no_bodies() {
        let t = Observed::new(
            Canned(Mutex::new(vec![
                r#"{"resCd":"A212","resMsg":"retry"}"#,
                r#"{"resCd":"0000"}"#,
            ])),
            false,
        );
        t.send(request("K1")).await.unwrap();
        t.send(request("K1")).await.unwrap();
        let log = t.attempts();
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].number, log[1].number), (1, 2));
        assert_eq!(log[0].shop_transaction_id, "K1");
        assert_eq!(log[0].res_cd.as_deref(), Some("A212"));
        assert_eq!(log[1].result, "HTTP 200 resCd 0000");
        assert!(!format!("{log:?}").contains("secret-ish"));
    }

    #[test]
    fn retryable_answers() {
        let ok = |body: &'static str| -> Result<HttpResponse, TransportError> {
            Ok(http::Response::new(Bytes::from_static(body.as_bytes())))
        };
        assert!(looks_retryable(
            kicc_alipay::PATH,
            &ok(r#"{"resCd":"A212"}"#)
        ));
        assert!(!looks_retryable(
            kicc_alipay::PATH,
            &ok(r#"{"resCd":"0000"}"#)
        ));
        assert!(looks_retryable(
            kicc_generic::PATH,
            &ok(r#"{"resCd":"VTIM"}"#)
        ));
        assert!(!looks_retryable(
            kicc_generic::PATH,
            &ok(r#"{"resCd":"P003"}"#)
        ));
        assert!(looks_retryable(
            kicc_generic::PATH,
            &Err(TransportError::Timeout(Duration::from_secs(30)))
        ));
    }
}
