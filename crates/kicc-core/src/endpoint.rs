//! Where requests go, and who sends them: environments, base URLs, the merchant.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::field::{FieldError, Rule};
use crate::secret::SecretKey;
use crate::text::MallId;

/// KICC's production API host.
pub const PRODUCTION_URL: &str = "https://pgapi.easypay.co.kr";
/// KICC's test API host (simulated approvals; test merchant IDs look like `T5102001`).
pub const TEST_URL: &str = "https://testpgapi.easypay.co.kr";

/// Which KICC installation to talk to. There is deliberately no `Default` and no boolean
/// switch: production is always named explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// `https://pgapi.easypay.co.kr`: real money.
    Production,
    /// `https://testpgapi.easypay.co.kr`.
    Test,
    /// Any other base URL, e.g. the sandbox on `http://127.0.0.1:8780`.
    Custom(BaseUrl),
}

impl Environment {
    /// The base URL requests are sent to.
    pub fn base_url(&self) -> &str {
        match self {
            Environment::Production => PRODUCTION_URL,
            Environment::Test => TEST_URL,
            Environment::Custom(b) => b.as_str(),
        }
    }
}

/// A validated base URL: `https://host[:port][/prefix]`, or `http://` for a loopback host
/// only (see [`is_loopback_host`]). No query, fragment, user info, spaces or trailing slash.
///
/// This is the one base-URL type of kicc-rs: the KICC clients ([`Environment::Custom`]) and
/// WeChat Pay direct (`wechatpay_direct::BaseUrl` is this type) both take it, so plain
/// `http://` goes nowhere but loopback, whichever provider a request is for. A path prefix
/// is kept and put in front of every request path; it is never signed (neither KICC's
/// `msgAuthValue` nor WeChat Pay's signature covers the host or a prefix), so it only makes
/// sense behind a reverse proxy that removes it again.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// WeChat Pay Global's host for merchants outside mainland China (wechatpay-direct's
    /// default primary).
    pub const HONG_KONG: &'static str = "https://apihk.mch.weixin.qq.com";
    /// WeChat Pay's mainland host (wechatpay-direct's alternative / backup).
    pub const MAINLAND: &'static str = "https://api.mch.weixin.qq.com";

    /// Validates a base URL; trailing slashes are dropped.
    ///
    /// ```
    /// use kicc_core::BaseUrl;
    ///
    /// assert_eq!(BaseUrl::new("https://pg.example/")?.as_str(), "https://pg.example");
    /// assert!(BaseUrl::new("http://127.0.0.1:8780").is_ok()); // the sandbox
    /// assert!(BaseUrl::new("http://pg.example").is_err()); // clear text off this machine
    /// # Ok::<(), kicc_core::FieldError>(())
    /// ```
    pub fn new(url: impl AsRef<str>) -> Result<Self, FieldError> {
        let err = |why| FieldError::new("baseUrl", Rule::Url(why));
        let url = url.as_ref();
        let url = url.trim_end_matches('/');
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(err(
                "must start with https:// (or http:// for a loopback host)",
            ));
        };
        if rest.contains(['?', '#', '@', ' ', '\\']) || rest.chars().any(char::is_control) {
            return Err(err(
                "must not contain a query, fragment, user info or spaces",
            ));
        }
        let authority = rest.split('/').next().unwrap_or("");
        let Some((host, _port)) = split_authority(authority) else {
            return Err(err("needs a host, and a port of digits if any"));
        };
        if !https && !is_loopback_host(host) {
            return Err(err(
                "plain http:// is allowed only for loopback hosts (127.0.0.0/8, [::1], localhost)",
            ));
        }
        if url.parse::<http::Uri>().is_err() {
            return Err(err("is not a valid URI"));
        }
        Ok(BaseUrl(url.to_owned()))
    }

    /// WeChat Pay Global's Hong Kong host, [`BaseUrl::HONG_KONG`].
    pub fn hong_kong() -> Self {
        BaseUrl(Self::HONG_KONG.to_owned())
    }

    /// WeChat Pay's mainland host, [`BaseUrl::MAINLAND`].
    pub fn mainland() -> Self {
        BaseUrl(Self::MAINLAND.to_owned())
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Splits `host[:port]` (IPv6 hosts in brackets) into the host, brackets kept, and the
/// port. `None` for user info, an empty host, a port that is not 1-5 digits of a `u16`,
/// or anything after an IPv6 literal's `]` other than `:port`.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Whether `host`, as [`http::Uri::host`] gives it, names this machine: `localhost` (any
/// letter case), an IPv4 address in `127.0.0.0/8`, or the IPv6 address `::1` (with or
/// without the URI's square brackets).
///
/// Nothing else: not `localhost.` (a trailing dot is a name DNS resolves), not
/// `*.localhost`, not `127.0.0.1.nip.io`, not the short form `127.1`, not `0.0.0.0`, not
/// the IPv4-mapped `::ffff:127.0.0.1`. This is the one predicate behind every "plain
/// `http://` only to loopback" rule in kicc-rs: [`BaseUrl::new`], the hyper transport's
/// refusal before it connects, and the CLI's sandbox credentials.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    // std's predicates are exactly the ranges wanted: 127.0.0.0/8 and ::1 alone.
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `authority` (`host[:port]`, no user info) names a loopback host by
/// [`is_loopback_host`]. `127.0.0.1@evil.example`, `127.0.0.1:80@evil.example` and
/// `127.0.0.1:port` with a port that is not a number are not.
pub fn is_loopback_authority(authority: &str) -> bool {
    split_authority(authority).is_some_and(|(host, _)| is_loopback_host(host))
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The merchant: where to send, the mall ID, and the secret key that signs each request.
///
/// `Debug` never shows the secret key. All three parts are required, so there is no builder:
/// [`Merchant::new`] takes them, already validated, and the getters read them back.
///
/// Cloning is cheap: clones share one cache of parsed request URIs (see
/// [`Merchant::post_json`]).
#[derive(Clone)]
pub struct Merchant {
    environment: Environment,
    mall_id: MallId,
    secret_key: SecretKey,
    uris: Arc<UriCache>,
}

impl fmt::Debug for Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merchant")
            .field("environment", &self.environment)
            .field("mall_id", &self.mall_id)
            .field("secret_key", &self.secret_key)
            .finish_non_exhaustive()
    }
}

impl Merchant {
    /// A merchant on `environment`.
    pub fn new(environment: Environment, mall_id: MallId, secret_key: SecretKey) -> Self {
        Merchant {
            environment,
            mall_id,
            secret_key,
            uris: Arc::new(UriCache::default()),
        }
    }

    /// Where requests go.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The merchant ID KICC assigned.
    pub fn mall_id(&self) -> &MallId {
        &self.mall_id
    }

    /// The secret key for `msgAuthValue` (redacted in `Debug`).
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret_key
    }

    /// The absolute URI of `path` on this merchant's environment.
    ///
    /// The URI of each path is parsed once and kept (for the first eight paths asked for;
    /// the SDK uses at most three per client); later calls clone it, which only counts
    /// references.
    pub fn uri(&self, path: &str) -> Result<http::Uri, FieldError> {
        self.uris.get(self.environment.base_url(), path)
    }

    /// A JSON `POST` of `body` to `path` on this merchant's environment.
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> Result<http::Request<Bytes>, FieldError> {
        let uri = self.uri(path)?;
        // The header values are static, so neither is validated or copied per request.
        let mut request = http::Request::new(Bytes::from(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(4);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(request)
    }
}

/// Request URIs already parsed, by path: a few write-once slots, read without a lock.
#[derive(Default)]
struct UriCache {
    slots: [OnceLock<(Box<str>, http::Uri)>; UriCache::SLOTS],
}

impl UriCache {
    /// How many paths are kept; the SDK's clients use at most three per merchant.
    const SLOTS: usize = 8;

    fn get(&self, base: &str, path: &str) -> Result<http::Uri, FieldError> {
        for slot in &self.slots {
            match slot.get() {
                Some((kept, uri)) if **kept == *path => return Ok(uri.clone()),
                Some(_) => continue,
                None => {
                    let uri = parse_uri(base, path)?;
                    // Another thread may have filled the slot meanwhile (with this path or
                    // another): then this path is simply parsed again next time.
                    let _ = slot.set((path.into(), uri.clone()));
                    return Ok(uri);
                }
            }
        }
        parse_uri(base, path)
    }
}

/// `base` followed by `path`, as a URI.
fn parse_uri(base: &str, path: &str) -> Result<http::Uri, FieldError> {
    let mut uri = String::with_capacity(base.len() + path.len());
    uri.push_str(base);
    uri.push_str(path);
    // `Uri::try_from(String)` takes the buffer without copying it.
    http::Uri::try_from(uri)
        .map_err(|_| FieldError::new("baseUrl", Rule::Url("does not form a valid request URI")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_table() {
        for host in [
            "localhost",
            "LOCALHOST",
            "LocalHost",
            "127.0.0.1",
            "127.255.255.254",
            "127.0.0.0",
            "::1",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
        ] {
            assert!(is_loopback_host(host), "{host} should be loopback");
        }
        for host in [
            "",
            "example.com",
            "localhost.",
            "foo.localhost",
            "localhost.example.com",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.1",
            "128.0.0.1",
            "126.255.255.255",
            "0.0.0.0",
            "10.0.0.1",
            "192.168.1.1",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1",
            "[::]",
            "[::2]",
            "[::1",
            "::1]",
            "[[::1]]",
            "127.0.0.1@evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host:?} must not be loopback");
        }
    }

    #[test]
    fn loopback_authorities_table() {
        for authority in [
            "127.0.0.1",
            "127.0.0.1:8780",
            "127.255.255.254:1",
            "[::1]",
            "[::1]:8780",
            "localhost:65535",
            "LOCALHOST",
        ] {
            assert!(is_loopback_authority(authority), "{authority}");
        }
        for authority in [
            "",
            ":8780",
            "127.0.0.1@evil.example",
            "127.0.0.1:80@evil.example",
            "evil.example@127.0.0.1",
            "user:pw@127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:80:80",
            "127.0.0.1:http",
            "::1",
            "[::1]x",
            "[::1]:",
            "localhost.:8780",
            "127.0.0.1.nip.io:80",
            "0.0.0.0:8780",
            "[::ffff:127.0.0.1]:8780",
        ] {
            assert!(!is_loopback_authority(authority), "{authority:?}");
        }
    }

    #[test]
    fn base_url_rules() {
        assert!(BaseUrl::new("https://testpgapi.easypay.co.kr").is_ok());
        assert_eq!(
            BaseUrl::new("https://a.example/").unwrap().as_str(),
            "https://a.example"
        );
        assert_eq!(
            BaseUrl::new("https://a.example//").unwrap().as_str(),
            "https://a.example"
        );
        assert_eq!(
            BaseUrl::new(String::from("https://a.example/prefix/"))
                .unwrap()
                .as_str(),
            "https://a.example/prefix"
        );
        for ok in [
            "http://127.0.0.1:8780",
            "http://127.0.0.1",
            "http://127.255.255.254:1/",
            "http://127.5.0.1",
            "http://localhost:1/",
            "http://LOCALHOST",
            "http://[::1]:8780",
            "http://[::1]/prefix",
            "https://127.0.0.1.nip.io",
            "https://0.0.0.0:8443",
            "https://[::ffff:127.0.0.1]",
            "https://pg.example:443/a/b",
        ] {
            assert!(BaseUrl::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://pgapi.easypay.co.kr",
            "http://10.0.0.1",
            "http://localhost.",
            "http://localhost.:8780",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://0.0.0.0:8780",
            "http://[::ffff:127.0.0.1]",
            "http://127.0.0.1@evil.example",
            "http://127.0.0.1:80@evil.example",
            "http://evil.example/@127.0.0.1",
            "http://evil.example#@127.0.0.1",
            "http://evil.example?@127.0.0.1",
            "http://evil.example\\@127.0.0.1",
            "http://127.0.0.1:",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:port",
            "http://[::1",
            "http://",
            "HTTP://127.0.0.1",
            "ftp://x",
            "127.0.0.1:8780",
            "https://a.example?x=1",
            "https://a.example#x",
            "https://user@a.example",
            "https://a example",
            "https://",
            "https://:443",
            "https:///path",
            "https://a.example/\u{7f}",
        ] {
            assert!(BaseUrl::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(BaseUrl::hong_kong().as_str(), BaseUrl::HONG_KONG);
        assert_eq!(BaseUrl::mainland().as_str(), BaseUrl::MAINLAND);
        assert!(BaseUrl::new(BaseUrl::HONG_KONG).is_ok());
        assert!(BaseUrl::new(BaseUrl::MAINLAND).is_ok());
    }

    #[test]
    fn post_json_is_a_json_post_to_base_and_path() {
        let m = Merchant::new(
            Environment::Custom(BaseUrl::new("http://127.0.0.1:8780").unwrap()),
            MallId::new("T0000001").unwrap(),
            SecretKey::new("k").unwrap(),
        );
        let r = m.post_json("/api/trades/revise", b"{}".to_vec()).unwrap();
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(r.uri(), "http://127.0.0.1:8780/api/trades/revise");
        assert_eq!(
            r.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(r.headers()["accept"], "application/json");
        assert_eq!(r.headers().len(), 2);
        assert_eq!(r.body().as_ref(), b"{}");
        let e = m.post_json("/bad path", Vec::new()).unwrap_err();
        assert_eq!(e.field, "baseUrl");
    }

    #[test]
    fn kept_uris_are_the_uris_of_their_own_paths() {
        let m = Merchant::new(
            Environment::Custom(BaseUrl::new("http://127.0.0.1:8780/prefix").unwrap()),
            MallId::new("T0000001").unwrap(),
            SecretKey::new("k").unwrap(),
        );
        let clone = m.clone();
        // More paths than the cache keeps, each asked for several times, through the
        // merchant and a clone that shares its cache, interleaved.
        let paths: Vec<String> = (0..20).map(|i| format!("/api/p{i}")).collect();
        for round in 0..3 {
            for (i, path) in paths.iter().enumerate() {
                let who = if (i + round) % 2 == 0 { &m } else { &clone };
                let uri = who.uri(path).unwrap();
                assert_eq!(uri, format!("http://127.0.0.1:8780/prefix{path}").as_str());
                let request = who.post_json(path, b"{}".to_vec()).unwrap();
                assert_eq!(request.uri(), &uri);
            }
        }
        // A path that does not form a URI is refused every time, and never kept.
        for _ in 0..2 {
            assert_eq!(m.uri("/bad path").unwrap_err().field, "baseUrl");
        }
        let other = Merchant::new(
            Environment::Production,
            MallId::new("T0000001").unwrap(),
            SecretKey::new("k").unwrap(),
        );
        assert_eq!(
            other.uri("/api/p0").unwrap(),
            "https://pgapi.easypay.co.kr/api/p0"
        );
    }

    #[test]
    fn a_merchant_prints_without_its_secret_key() {
        let m = Merchant::new(
            Environment::Test,
            MallId::new("T5102001").unwrap(),
            SecretKey::new("merchant-secret-value").unwrap(),
        );
        // With a path kept in its cache too.
        m.uri("/api/trades/revise").unwrap();
        let shown = format!("{m:?} {:?}", m.clone());
        assert!(shown.contains("T5102001"), "{shown}");
        assert!(shown.contains("Test"), "{shown}");
        assert!(!shown.contains("merchant-secret-value"), "{shown}");
    }

    #[test]
    fn environments_are_not_swapped() {
        assert_eq!(
            Environment::Production.base_url(),
            "https://pgapi.easypay.co.kr"
        );
        assert_eq!(
            Environment::Test.base_url(),
            "https://testpgapi.easypay.co.kr"
        );
    }

    mod props {
        use std::net::{Ipv4Addr, Ipv6Addr};

        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn never_panics_on_any_input(text in ".*") {
                let _ = is_loopback_host(&text);
                let _ = is_loopback_authority(&text);
                let _ = BaseUrl::new(&text);
            }

            #[test]
            fn ipv4_loopback_is_exactly_127_slash_8(bits in any::<u32>(), port in any::<u16>()) {
                let ip = Ipv4Addr::from(bits);
                let expected = ip.octets()[0] == 127;
                prop_assert_eq!(is_loopback_host(&ip.to_string()), expected);
                prop_assert_eq!(is_loopback_authority(&format!("{ip}:{port}")), expected);
                prop_assert_eq!(BaseUrl::new(format!("http://{ip}:{port}")).is_ok(), expected);
                let https = format!("https://{ip}:{port}");
                prop_assert!(BaseUrl::new(&https).is_ok(), "{}", https);
            }

            #[test]
            fn ipv6_loopback_is_exactly_one_address(bits in any::<u128>()) {
                let ip = Ipv6Addr::from(bits);
                let expected = bits == 1;
                prop_assert_eq!(is_loopback_host(&ip.to_string()), expected);
                prop_assert_eq!(is_loopback_host(&format!("[{ip}]")), expected);
                prop_assert_eq!(BaseUrl::new(format!("http://[{ip}]:8780")).is_ok(), expected);
            }
        }
    }
}
