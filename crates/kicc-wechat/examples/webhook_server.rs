//! Receiving KICC's WeChat Pay cancel notices in a hyper server.
//!
//! `WebhookInbox::handle` does the work (parse, de-duplicate, acknowledge) synchronously and
//! without IO, so every notice is answered at once, far inside KICC's 10 s limit. Act on a
//! notice (ship the refund e-mail, update the order) AFTER confirming it with the status query
//! (`WechatClient::wait_for_result` does that), never inside the handler.
//!
//! Run: `cargo run -p kicc-wechat --example webhook_server -- 127.0.0.1:9000`, then point
//! `notifyUrl` at `http://127.0.0.1:9000/kicc/wechat` (behind your TLS front in production,
//! with KICC's source IPs allowed: `SourcePolicy::DocumentedKicc`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kicc_wechat::{NoticeEvent, WebhookInbox};
use tokio::net::TcpListener;

/// Notices are small; anything larger is not one.
const MAX_NOTICE_BYTES: usize = 64 * 1024;

/// Serves notices posted to `/kicc/wechat` on `listener` into `inbox`, until the task is dropped.
pub async fn serve_webhooks(listener: TcpListener, inbox: Arc<WebhookInbox>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, peer, inbox.clone()));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    inbox: Arc<WebhookInbox>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let respond = |status: StatusCode, body: Vec<u8>| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(r)
    };
    if req.method() != Method::POST || req.uri().path() != "/kicc/wechat" {
        return respond(StatusCode::NOT_FOUND, Vec::new());
    }
    let body = match Limited::new(req.into_body(), MAX_NOTICE_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(StatusCode::PAYLOAD_TOO_LARGE, Vec::new()),
    };
    let reply = inbox.handle(Some(peer.ip()), &body);
    match &reply.event {
        NoticeEvent::New(n) => eprintln!(
            "notice: cancel {} of {}: resCd {} ({})",
            n.cancel_pg_cno, n.pg_cno, n.res_cd, n.res_msg
        ),
        NoticeEvent::Duplicate(n) => {
            eprintln!("re-sent notice for {} acknowledged again", n.cancel_pg_cno)
        }
        NoticeEvent::Rejected(why) => eprintln!("rejected a notice: {why}"),
        // Future kinds of event: the reply below is still the right one to send.
        _ => eprintln!("notice: {:?}", reply.status),
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST);
    respond(status, reply.body)
}

#[allow(dead_code)] // also compiled into the integration tests, which use only `serve_webhooks`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}/kicc/wechat", listener.local_addr()?);
    serve_webhooks(listener, Arc::new(WebhookInbox::default())).await;
    Ok(())
}
