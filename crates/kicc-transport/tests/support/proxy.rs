//! A small forward proxy for the tests: `CONNECT` tunnels and absolute-form
//! plain-HTTP forwarding, optionally demanding Basic authentication. It only
//! forwards to loopback hosts and records what it was asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// Who connected to the proxy.
    pub peer: SocketAddr,
    /// `CONNECT`, `POST`, ...
    pub method: String,
    /// The request target as sent: `host:port` for CONNECT, an absolute URL otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub proxy_authorization: Option<String>,
    /// What the proxy answered itself (407, 502) or `None` when it forwarded.
    pub refused_with: Option<u16>,
}

/// A running proxy: its address and its log.
pub struct ForwardProxy {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<ProxyRequest>>>,
}

impl ForwardProxy {
    /// `http://127.0.0.1:PORT`, optionally with `user:password@`.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn log(&self) -> Vec<ProxyRequest> {
        self.log.lock().expect("proxy log").clone()
    }
}

/// Starts a proxy on 127.0.0.1:0. With `basic`, every request must carry
/// `Proxy-Authorization: Basic <basic>` (base64 of `user:password`) or gets 407.
pub async fn forward_proxy(basic: Option<&'static str>) -> ForwardProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            tokio::spawn(serve(tcp, peer, basic, Arc::clone(&shared)));
        }
    });
    ForwardProxy { addr, log }
}

async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    basic: Option<&'static str>,
    log: Arc<Mutex<Vec<ProxyRequest>>>,
) {
    // Read the request head; keep whatever came after it.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let version = request_line.next().unwrap_or("HTTP/1.1").to_owned();
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let proxy_authorization = headers.iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    let mut record = ProxyRequest {
        peer,
        method: method.clone(),
        target: target.clone(),
        proxy_authorization: proxy_authorization.clone(),
        refused_with: None,
    };

    if let Some(expected) = basic {
        if proxy_authorization.as_deref() != Some(format!("Basic {expected}").as_str()) {
            record.refused_with = Some(407);
            log.lock().expect("proxy log").push(record);
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }

    // Where to, and what to send there first.
    let (authority, first_bytes) = if method == "CONNECT" {
        (target.clone(), rest)
    } else {
        let Some(without_scheme) = target.strip_prefix("http://") else {
            return;
        };
        let (authority, path) = match without_scheme.find('/') {
            Some(i) => (&without_scheme[..i], &without_scheme[i..]),
            None => (without_scheme, "/"),
        };
        let mut forwarded = format!("{method} {path} {version}\r\n");
        for line in &headers {
            let name = line.split(':').next().unwrap_or_default();
            if !name.eq_ignore_ascii_case("proxy-authorization") {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("\r\n");
        let mut bytes = forwarded.into_bytes();
        bytes.extend_from_slice(&rest);
        (authority.to_owned(), bytes)
    };
    let loopback = authority.starts_with("127.") || authority.starts_with("localhost:");
    let upstream = if loopback {
        TcpStream::connect(&authority).await.ok()
    } else {
        None
    };
    let Some(mut upstream) = upstream else {
        record.refused_with = Some(502);
        log.lock().expect("proxy log").push(record);
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    log.lock().expect("proxy log").push(record);
    if method == "CONNECT"
        && client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
    {
        return;
    }
    if upstream.write_all(&first_bytes).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
