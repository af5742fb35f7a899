//! Layer 4, IO: the HTTP(S) server: accepting connections (HTTP/1.1 and h2,
//! optionally over TLS), body limits, the provider latency, and dispatch
//! through the one routing table to the admin API or the fault path.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::fault;
use crate::routes::{route, Head, Route, RouteError};
use crate::shared::{json_error, wait_shutdown, DropConnection, Resp, Shared};

/// Largest request body accepted (larger ones get HTTP 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; then ends them all.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = wait_shutdown(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(connection(tcp, Arc::clone(&shared), acceptor.clone()));
                }
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn connection(tcp: TcpStream, shared: Arc<Shared>, acceptor: Option<TlsAcceptor>) {
    let mut shutdown = shared.shutdown.clone();
    match acceptor {
        None => serve(tcp, shared, &mut shutdown).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            match handshake.await {
                Ok(Ok(tls)) => serve(tls, shared, &mut shutdown).await,
                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn serve<I>(io: I, shared: Arc<Shared>, shutdown: &mut watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        res = conn => if let Err(e) = res {
            tracing::debug!("connection ended: {e}");
        },
        () = wait_shutdown(shutdown) => {}
    }
}

enum BodyError {
    TooLarge,
    Unreadable,
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let route = match route(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Ok(json_error(
                StatusCode::NOT_FOUND,
                &format!("no such endpoint: {}", req.uri().path()),
            ))
        }
        Err(RouteError::MethodNotAllowed(allow)) => {
            let mut resp = json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed here (allowed: {allow})", req.method()),
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return Ok(resp);
        }
    };
    let head = matches!(route, Route::Wechatpay(_)).then(|| Head::from_request(&req));
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Ok(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            ))
        }
        Err(BodyError::Unreadable) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "request body could not be read",
            ))
        }
    };
    if !matches!(route, Route::Admin(_)) {
        // The provider's latency: before anything is processed, so the
        // request is in flight meanwhile (inside the processing bound).
        let latency = shared.lock().settings.latency;
        if !shared.sleep_unless_shutdown(latency).await {
            return Err(DropConnection);
        }
    }
    match (route, head) {
        (Route::Admin(r), _) => Ok(admin::handle(&shared, r, &body)),
        (Route::Api(ep), _) => fault::serve_kicc(shared, ep, body).await,
        (Route::Wechatpay(r), Some(head)) => fault::serve_wechatpay(shared, r, head, body).await,
        (Route::Wechatpay(_), None) => Ok(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "request head lost",
        )),
    }
}
