//! Loopback test servers and a throw-away PKI for the HyperTransport tests.
//!
//! Every server binds 127.0.0.1:0 and runs as tasks of the test's own Tokio
//! runtime, so it stops when the test returns.
#![allow(dead_code)] // each test binary uses a different subset

pub mod proxy;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A root CA and one server certificate it signed, for `127.0.0.1` and `localhost`.
pub struct TestPki {
    /// The root certificate, PEM: what a client must trust.
    pub ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl TestPki {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kicc-transport test root");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("server key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "kicc-transport test server");
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("server certificate");

        Self {
            ca_pem: ca.pem(),
            leaf: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    /// A server config presenting the leaf certificate, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![self.leaf.clone()], key)
                .expect("server certificate and key");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// What the echo server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub version: Version,
    pub method: http::Method,
    pub path: String,
    pub user_agent: Option<String>,
    pub body: Bytes,
}

/// A hyper server (HTTP/1.1 and h2, optionally over TLS) that records what it sees.
pub struct EchoServer {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Requests that reached the service, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The source address of each accepted TCP connection, in order.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl EchoServer {
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().expect("peers lock").clone()
    }
}

type ResBody = BoxBody<Bytes, Infallible>;

/// Routes:
/// - `/echo`: 201, `x-echo-method`, `x-echo-custom` (from `x-custom`), the request body back.
/// - `/bytes/N`: 200 with N bytes and a Content-Length.
/// - `/chunked/N`: 200 with N bytes in 256-byte chunks, no Content-Length.
async fn handle(
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<ResBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    seen.lock().expect("seen lock").push(Seen {
        version: parts.version,
        method: parts.method.clone(),
        path: path.clone(),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.clone(),
    });

    let response = if path == "/echo" {
        let mut builder = Response::builder()
            .status(StatusCode::CREATED)
            .header("x-echo-method", parts.method.as_str())
            .header("content-type", "application/octet-stream");
        if let Some(custom) = parts.headers.get("x-custom") {
            builder = builder.header("x-echo-custom", custom);
        }
        builder.body(Full::new(body).boxed())
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().expect("size");
        Response::builder().body(Full::new(Bytes::from(vec![b'a'; n])).boxed())
    } else if let Some(n) = path.strip_prefix("/chunked/") {
        let n: usize = n.parse().expect("size");
        let (mut tx, rx) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        tokio::spawn(async move {
            let mut left = n;
            while left > 0 {
                let chunk = left.min(256);
                if tx.send_data(Bytes::from(vec![b'c'; chunk])).await.is_err() {
                    return;
                }
                left -= chunk;
            }
        });
        Response::builder().body(rx.boxed())
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()).boxed())
    };
    Ok(response.expect("valid response"))
}

/// Starts an echo server; with `tls`, HTTPS with that config's ALPN.
pub async fn echo_server(tls: Option<Arc<ServerConfig>>) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peers = Arc::new(Mutex::new(Vec::new()));
    let (conn_count, seen_log) = (Arc::clone(&connections), Arc::clone(&seen));
    let peer_log = Arc::clone(&peers);
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            peer_log.lock().expect("peers lock").push(peer);
            conn_count.fetch_add(1, Ordering::SeqCst);
            let seen = Arc::clone(&seen_log);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, Arc::clone(&seen)));
                let builder = ServerBuilder::new(TokioExecutor::new());
                match tls {
                    Some(config) => {
                        // A failed handshake (untrusted certificate) just ends the connection.
                        if let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    EchoServer {
        addr,
        connections,
        seen,
        peers,
    }
}

/// How a [`raw_server`] misbehaves on each connection.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Accept TCP and never say a word (a TLS handshake that never completes).
    Silent,
    /// Read the whole request, then never answer.
    StallAfterRequest,
    /// Read the request, send the head and part of the body, then stall.
    StallMidBody,
    /// Read the whole request, then close the connection without answering.
    CloseAfterRequest,
}

/// A plain TCP server that misbehaves; counts the complete requests it read.
pub struct RawServer {
    pub addr: SocketAddr,
    pub requests_read: Arc<AtomicUsize>,
}

impl RawServer {
    pub fn requests_read(&self) -> usize {
        self.requests_read.load(Ordering::SeqCst)
    }
}

/// How long a stalling server holds a connection before giving up on its own.
const STALL: Duration = Duration::from_secs(10);

pub async fn raw_server(behaviour: Misbehaviour) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let requests_read = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests_read);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(misbehave(tcp, behaviour, counter));
        }
    });
    RawServer {
        addr,
        requests_read,
    }
}

async fn misbehave(mut tcp: TcpStream, behaviour: Misbehaviour, counter: Arc<AtomicUsize>) {
    if let Misbehaviour::Silent = behaviour {
        tokio::time::sleep(STALL).await;
        return;
    }
    if read_request(&mut tcp).await.is_none() {
        return;
    }
    counter.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        Misbehaviour::Silent | Misbehaviour::StallAfterRequest => {
            tokio::time::sleep(STALL).await;
        }
        Misbehaviour::StallMidBody => {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                .await;
            tokio::time::sleep(STALL).await;
        }
        Misbehaviour::CloseAfterRequest => drop(tcp),
    }
}

/// Reads one HTTP/1.1 request (head and a Content-Length body); `None` on EOF.
async fn read_request(tcp: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    };
    let head = String::from_utf8_lossy(buf.get(..head_end)?).to_ascii_lowercase();
    let body_len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + body_len {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    }
    Some(())
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr
}
