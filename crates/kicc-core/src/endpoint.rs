//! Where requests go, and who sends them: environments, base URLs, the merchant.

use std::fmt;

use bytes::Bytes;

use crate::error::{FieldError, Rule};
use crate::secret::SecretKey;
use crate::text::MallId;

/// KICC's production API host.
pub const PRODUCTION_URL: &str = "https://pgapi.easypay.co.kr";
/// KICC's test API host (simulated approvals; test merchant IDs look like `T5102001`).
pub const TEST_URL: &str = "https://testpgapi.easypay.co.kr";

/// Which KICC installation to talk to. There is deliberately no `Default` and no boolean
/// switch: production is always named explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// only (127.0.0.0/8, `[::1]`, `localhost`). No query, fragment, user info or trailing slash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Validates a base URL.
    pub fn new(url: &str) -> Result<Self, FieldError> {
        let err = |why| FieldError::new("baseUrl", Rule::Url(why));
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
        if authority.is_empty() {
            return Err(err("needs a host"));
        }
        if !https && !is_loopback_authority(authority) {
            return Err(err(
                "plain http:// is allowed only for loopback hosts (127.0.0.1, [::1], localhost)",
            ));
        }
        Ok(BaseUrl(url.to_owned()))
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `authority` (`host[:port]`) names a loopback host.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
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
/// `Debug` never shows the secret key.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// Where requests go.
    pub environment: Environment,
    /// The merchant ID KICC assigned.
    pub mall_id: MallId,
    /// The secret key for `msgAuthValue`.
    pub secret_key: SecretKey,
}

impl Merchant {
    /// A merchant on `environment`.
    pub fn new(environment: Environment, mall_id: MallId, secret_key: SecretKey) -> Self {
        Merchant {
            environment,
            mall_id,
            secret_key,
        }
    }

    /// A JSON `POST` of `body` to `path` on this merchant's environment.
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> Result<http::Request<Bytes>, FieldError> {
        let base = self.environment.base_url();
        let mut uri = String::with_capacity(base.len() + path.len());
        uri.push_str(base);
        uri.push_str(path);
        // `Uri::try_from(String)` takes the buffer without copying it; the header values
        // are static, so neither is validated or copied per request.
        let uri = http::Uri::try_from(uri).map_err(|_| {
            FieldError::new("baseUrl", Rule::Url("does not form a valid request URI"))
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(BaseUrl::new("https://testpgapi.easypay.co.kr").is_ok());
        assert_eq!(
            BaseUrl::new("https://a.example/").unwrap().as_str(),
            "https://a.example"
        );
        assert!(BaseUrl::new("http://127.0.0.1:8780").is_ok());
        assert!(BaseUrl::new("http://127.5.0.1").is_ok());
        assert!(BaseUrl::new("http://localhost:1/").is_ok());
        assert!(BaseUrl::new("http://[::1]:8780").is_ok());
        assert!(BaseUrl::new("http://pgapi.easypay.co.kr").is_err());
        assert!(BaseUrl::new("http://10.0.0.1").is_err());
        assert!(BaseUrl::new("http://localhost.evil.example").is_err());
        assert!(BaseUrl::new("ftp://x").is_err());
        assert!(BaseUrl::new("https://a.example?x=1").is_err());
        assert!(BaseUrl::new("https://user@a.example").is_err());
        assert!(BaseUrl::new("https://").is_err());
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
}
