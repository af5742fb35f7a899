//! A loopback receiver for the sandbox's WeChat notices, feeding the current scenario's inbox.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kicc_wechat::WebhookInbox;
use tokio::net::TcpListener;

/// The inbox notices go to; replaced for each scenario, since the sandbox's identifiers
/// restart after its reset and an old notice must not answer for a new cancel.
pub(crate) type CurrentInbox = Arc<Mutex<Arc<WebhookInbox>>>;

/// Serves `POST /notice` on a loopback port until the task is dropped; returns its URL.
pub(crate) async fn start(
    current: CurrentInbox,
) -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("webhook receiver: {e}"))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("webhook receiver: {e}"))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let current = current.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, peer, current.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}/notice"), task))
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    current: CurrentInbox,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => {
            let inbox = current.lock().map(|g| g.clone()).ok();
            match inbox {
                Some(inbox) => {
                    let reply = inbox.handle(Some(peer.ip()), &b.to_bytes());
                    (
                        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST),
                        reply.body,
                    )
                }
                None => (StatusCode::INTERNAL_SERVER_ERROR, Vec::new()),
            }
        }
        Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, Vec::new()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
