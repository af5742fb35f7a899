//! The demo's webhook receiver: a minimal HTTP/1.1 server on a loopback port that hands each
//! notice body to [`kicc_wechat::WebhookInbox::handle`] and answers what it says. It is what a
//! merchant's `notifyUrl` endpoint does, without any web framework.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kicc_wechat::WebhookInbox;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The largest notice body accepted.
const MAX_NOTICE_BYTES: usize = 64 * 1024;

/// A running receiver; dropping it stops it.
#[derive(Debug)]
pub struct Receiver {
    url: String,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0` feeding `inbox`.
    pub async fn start(inbox: Arc<WebhookInbox>) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept(listener, inbox));
        Ok(Receiver {
            url: format!("http://{addr}/kicc/wechat/notify"),
            task,
        })
    }

    /// The URL to give as `notifyUrl`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, inbox: Arc<WebhookInbox>) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let inbox = Arc::clone(&inbox);
        connections.spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&inbox), peer, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

async fn handle(
    inbox: Arc<WebhookInbox>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"resCd":"9999","resMsg":"POST only"}"#,
        ));
    }
    let body = match Limited::new(req.into_body(), MAX_NOTICE_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"resCd":"9999","resMsg":"body too large"}"#,
            ))
        }
    };
    let answer = inbox.handle(Some(peer.ip()), &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(reply(status, answer.body))
}
