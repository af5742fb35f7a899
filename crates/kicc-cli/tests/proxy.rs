//! `--proxy`, `--no-proxy`, `--local-address` and the environment's proxies, against a
//! `kicc sandbox serve` child behind a small forwarding proxy (plain HTTP, absolute form) that
//! runs on threads of the test and records who asked for what.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{kicc, run, Served};

/// One request the proxy forwarded: who connected, and the request line.
#[derive(Debug, Clone)]
struct Forwarded {
    peer: SocketAddr,
    request_line: String,
}

struct Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Forwarded>>>,
}

impl Proxy {
    /// A proxy on 127.0.0.1:0 forwarding absolute-form requests to loopback servers.
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&log);
        // The accept loop ends with the test process.
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = Arc::clone(&shared);
                thread::spawn(move || forward(client, log));
            }
        });
        Proxy { addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> Vec<Forwarded> {
        self.log.lock().expect("proxy log").clone()
    }
}

/// Reads one request head, rewrites its absolute-form target to origin form and pipes both ways.
fn forward(mut client: TcpStream, log: Arc<Mutex<Vec<Forwarded>>>) {
    let Ok(peer) = client.peer_addr() else { return };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Some(rest) = target.strip_prefix("http://") else {
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut upstream) = TcpStream::connect(authority) else {
        return;
    };
    log.lock().expect("proxy log").push(Forwarded {
        peer,
        request_line: request_line.clone(),
    });
    let mut out = format!(
        "{method} {} {version}\r\n",
        if path.is_empty() { "/" } else { path }
    );
    for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&buf[head_end..]);
    if upstream.write_all(&bytes).is_err() {
        return;
    }
    let (Ok(mut up_read), Ok(mut client_write)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut client, &mut upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = back.join();
}

#[test]
fn a_cancel_through_the_proxy_changes_the_sandbox_as_a_direct_one() {
    let s = Served::quick();
    let proxy = Proxy::start();
    let direct_pg = s.payment("card", 12_000, "KRW");
    let proxied_pg = s.payment("card", 12_000, "KRW");

    let direct = s.kicc(&["cancel", "generic", "--pg-cno", &direct_pg]);
    assert_eq!(direct.code, 0, "{direct:#?}");
    let proxied = s.kicc(&[
        "cancel",
        "generic",
        "--pg-cno",
        &proxied_pg,
        "--proxy",
        &proxy.url(),
        "--local-address",
        "127.0.0.2",
    ]);
    assert_eq!(proxied.code, 0, "{proxied:#?}");

    let log = proxy.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        log[0].request_line,
        format!("POST {}/api/trades/revise HTTP/1.1", s.base_url)
    );
    assert_eq!(log[0].peer.ip().to_string(), "127.0.0.2", "--local-address");

    let (a, b) = (s.state(&direct_pg), s.state(&proxied_pg));
    for field in ["statusCode", "remainingAmount"] {
        assert_eq!(a[field], b[field], "{field}: {a} vs {b}");
    }
    assert_eq!(a["cancels"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["cancels"].as_array().map(Vec::len), Some(1));
    assert_eq!(direct.json()["result"], proxied.json()["result"]);
}

#[test]
fn the_environment_proxy_is_honoured_unless_no_proxy_says_otherwise() {
    let s = Served::quick();
    let proxy = Proxy::start();
    let pg = s.payment("card", 9_000, "KRW");
    let cancel = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = kicc();
        cmd.args(["cancel", "generic", "--pg-cno", &pg, "--amount", "1000"])
            .args(["--base-url", &s.base_url])
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };

    let r = cancel(&[], &[("HTTP_PROXY", &proxy.url())]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(proxy.log().len(), 1);

    let r = cancel(&["--no-proxy"], &[("HTTP_PROXY", &proxy.url())]);
    assert_eq!(r.code, 0, "{r:#?}");
    let r = cancel(
        &[],
        &[("http_proxy", &proxy.url()), ("no_proxy", "127.0.0.1")],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(proxy.log().len(), 1, "--no-proxy and NO_PROXY bypass it");
    assert_eq!(s.state(&pg)["remainingAmount"], 6_000);
}

#[test]
fn a_proxy_that_is_not_there_is_certainly_not_processed_and_named() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let r = run(kicc().args([
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--max-attempts",
        "1",
        "--base-url",
        "http://127.0.0.1:9",
        "--proxy",
        &format!("http://ops:hunter2@{closed}"),
    ]));
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("did not happen"), "{r:#?}");
    assert!(r.stderr.contains(&format!("proxy {closed}")), "{r:#?}");
    assert!(!r.stderr.contains("hunter2"), "{r:#?}");
}

#[test]
fn unsupported_proxies_and_bad_addresses_are_invalid_input() {
    let r = run(kicc().args([
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--proxy",
        "socks5://ops:hunter2@127.0.0.1:1080",
    ]));
    r.assert_invalid(&["proxy", "socks5"]);
    assert!(!r.stderr.contains("hunter2"), "{r:#?}");

    let r = run(kicc().args([
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--local-address",
        "nope",
    ]));
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("--local-address"), "{r:#?}");

    let r = run(kicc().args([
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--proxy",
        "http://p:1",
        "--no-proxy",
    ]));
    assert_eq!(r.code, 2, "{r:#?}");
}
