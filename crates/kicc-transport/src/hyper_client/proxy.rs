//! Which proxy, if any, a request goes through: [`ProxySettings`] and the
//! validated routing table the connector consults.
//!
//! The rules are curl's, as implemented by hyper-util's
//! [`Matcher`](hyper_util::client::proxy::matcher::Matcher): `HTTPS_PROXY` for
//! `https://` destinations, `HTTP_PROXY` for `http://` ones, `ALL_PROXY` for
//! both when the specific one is unset, and `NO_PROXY` (comma-separated host
//! names, which also match their subdomains, IP addresses, CIDR networks, or `*`)
//! for the destinations that bypass the proxy. Upper-case names are read before
//! lower-case ones; when `REQUEST_METHOD` is set (a CGI script, where `HTTP_PROXY`
//! may come from a request header: "httpoxy") no proxy is read from the environment.

use std::fmt;

use http::uri::Scheme;
use http::Uri;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

use super::error::ConfigError;

/// One setting and where it came from (an environment variable's name, or the
/// builder method), so that errors can name it.
#[derive(Clone, PartialEq, Eq)]
struct Setting {
    name: &'static str,
    value: String,
}

/// Which proxies a [`HyperTransport`](super::HyperTransport) uses, and for which
/// destinations not.
///
/// Build it from the environment ([`from_env`](Self::from_env), what a
/// transport does by default), from variables you pass in
/// ([`from_vars`](Self::from_vars)), or explicitly ([`all`](Self::all) plus
/// [`no_proxy`](Self::no_proxy)), then hand it to
/// [`TransportConfig::proxy_settings`](super::TransportConfig::proxy_settings).
///
/// Proxy URLs are `http://[user:password@]host[:port]` (no scheme means
/// `http://`; without a port, port 80 is used). `https://` (TLS to the proxy)
/// and SOCKS proxies are not supported: building a transport with one fails
/// with [`ConfigError::Proxy`] instead of silently connecting directly.
/// `user:password` (percent-encoded) becomes HTTP Basic proxy authentication;
/// `Debug` and every error show the URL with the credentials replaced by `***`.
///
/// ```
/// use kicc_transport::ProxySettings;
///
/// let vars = [("HTTPS_PROXY", "http://proxy.corp:3128"), ("NO_PROXY", "localhost,127.0.0.1")];
/// let settings = ProxySettings::from_vars(|name| {
///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// });
/// assert_eq!(
///     settings.proxy_for(&"https://pgapi.easypay.co.kr/".parse()?)?.map(|u| u.to_string()),
///     Some("http://proxy.corp:3128/".to_owned())
/// );
/// assert_eq!(settings.proxy_for(&"https://127.0.0.1:8443/".parse()?)?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    all: Option<Setting>,
    http: Option<Setting>,
    https: Option<Setting>,
    no: Option<Setting>,
}

impl ProxySettings {
    /// No proxy for any destination.
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxy `url` for every destination (until [`no_proxy`](Self::no_proxy)
    /// exempts some).
    pub fn all(url: impl Into<String>) -> Self {
        ProxySettings {
            all: Some(Setting {
                name: "proxy",
                value: url.into(),
            }),
            ..Self::default()
        }
    }

    /// Destinations that bypass the proxy, in `NO_PROXY` syntax: comma-separated
    /// host names (each also matching its subdomains; a leading dot is allowed),
    /// IP addresses, CIDR networks (`10.0.0.0/8`), or `*` for every destination.
    /// Replaces any list read from the environment.
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.no = Some(Setting {
            name: "no_proxy",
            value: hosts.into(),
        });
        self
    }

    /// Reads `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper
    /// case first, then lower case; a variable that is set, even empty, wins)
    /// from the process environment, as hyper-util's matcher does. When
    /// `REQUEST_METHOD` is set (a CGI program, where `HTTP_PROXY` may come from
    /// a request header: "httpoxy") no proxy is taken from the environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), but asks `var` for each variable's
    /// value (`None` = unset), so that the rules can be applied to any set of
    /// variables without touching the process environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| var(name).map(|value| Setting { name, value }))
        };
        let no = first(["NO_PROXY", "no_proxy"]);
        if var("REQUEST_METHOD").is_some() {
            // A CGI environment: HTTP_PROXY may come from the client ("httpoxy").
            return ProxySettings {
                no,
                ..Self::default()
            };
        }
        ProxySettings {
            all: first(["ALL_PROXY", "all_proxy"]),
            http: first(["HTTP_PROXY", "http_proxy"]),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            no,
        }
    }

    /// Only the `NO_PROXY` list (`NO_PROXY`, then `no_proxy`) read by `var`.
    pub(crate) fn no_proxy_from_vars(var: impl Fn(&str) -> Option<String>) -> Option<String> {
        var("NO_PROXY").or_else(|| var("no_proxy"))
    }

    /// The proxy a request to `destination` would go through (its URL without
    /// credentials), or `None` for a direct connection. Fails when a proxy URL
    /// in these settings is invalid or unsupported.
    pub fn proxy_for(&self, destination: &Uri) -> Result<Option<Uri>, ConfigError> {
        Ok(Routes::new(self)?
            .intercept(destination)
            .map(|i| i.uri().clone()))
    }
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: &Option<Setting>| s.as_ref().map(|s| (s.name, redact(&s.value)));
        f.debug_struct("ProxySettings")
            .field("all", &show(&self.all))
            .field("http", &show(&self.http))
            .field("https", &show(&self.https))
            .field("no_proxy", &self.no.as_ref().map(|s| (s.name, &s.value)))
            .finish()
    }
}

/// A proxy URL for display: user info replaced by `***`; text that is not a
/// URL is not shown at all (it might be a password).
pub(crate) fn redact(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => match uri.authority() {
            Some(authority) => {
                let host_port = authority
                    .as_str()
                    .rsplit_once('@')
                    .map_or(authority.as_str(), |(_, hp)| hp);
                let userinfo = if authority.as_str().contains('@') {
                    "***@"
                } else {
                    ""
                };
                let scheme = uri.scheme_str().unwrap_or("http");
                format!("{scheme}://{userinfo}{host_port}")
            }
            None => "<not a proxy URL>".to_owned(),
        },
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// Checks one proxy URL: parses, `http` (or no) scheme, a host.
fn validate(setting: &Setting) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::Proxy {
        setting: setting.name,
        reason,
        source: None,
    };
    // `InvalidUri`'s text names the rule broken, never the value, so it can
    // be kept as the cause without leaking a password.
    let uri = setting
        .value
        .parse::<Uri>()
        .map_err(|e| ConfigError::Proxy {
            setting: setting.name,
            reason: "not a URL; expected http://[user:password@]host:port".to_owned(),
            source: Some(Box::new(e)),
        })?;
    match uri.scheme_str() {
        None | Some("http") => {}
        Some("https") => {
            return Err(fail(format!(
                "{}: https:// proxies (TLS to the proxy) are not supported; use http://",
                redact(&setting.value)
            )))
        }
        Some(other) => {
            return Err(fail(format!(
                "{}: proxy scheme {other} is not supported; use http://",
                redact(&setting.value)
            )))
        }
    }
    let host_port = uri
        .authority()
        .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, hp)| hp))
        .unwrap_or("");
    if host_port.is_empty() || host_port.starts_with(':') {
        return Err(fail("the proxy URL has no host".to_owned()));
    }
    Ok(())
}

/// The validated settings, ready to route requests.
pub(crate) struct Routes {
    matcher: Option<Matcher>,
}

impl Routes {
    /// No proxy at all.
    pub(crate) fn direct() -> Self {
        Routes { matcher: None }
    }

    pub(crate) fn new(settings: &ProxySettings) -> Result<Self, ConfigError> {
        let mut any = false;
        for setting in [&settings.all, &settings.http, &settings.https]
            .into_iter()
            .flatten()
            .filter(|s| !s.value.trim().is_empty())
        {
            validate(setting)?;
            any = true;
        }
        if !any {
            return Ok(Self::direct());
        }
        let value = |s: &Option<Setting>| s.as_ref().map(|s| s.value.trim().to_owned());
        let mut builder = Matcher::builder();
        if let Some(v) = value(&settings.all) {
            builder = builder.all(v);
        }
        if let Some(v) = value(&settings.http) {
            builder = builder.http(v);
        }
        if let Some(v) = value(&settings.https) {
            builder = builder.https(v);
        }
        if let Some(v) = value(&settings.no) {
            builder = builder.no(v);
        }
        Ok(Routes {
            matcher: Some(builder.build()),
        })
    }

    /// The proxy for `destination`, with its credentials, or `None`: direct.
    pub(crate) fn intercept(&self, destination: &Uri) -> Option<Intercept> {
        let matcher = self.matcher.as_ref()?;
        let scheme = destination.scheme()?;
        if *scheme != Scheme::HTTP && *scheme != Scheme::HTTPS {
            return None;
        }
        matcher.intercept(destination)
    }
}

/// `host:port` of a proxy (its URI never carries credentials), for messages.
pub(crate) fn proxy_label(proxy: &Uri) -> String {
    match (proxy.host(), proxy.port_u16()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => format!("{host}:80"),
        _ => "<proxy>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_chain;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> ProxySettings {
        ProxySettings::from_vars(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn proxy(settings: &ProxySettings, url: &str) -> Option<String> {
        settings
            .proxy_for(&url.parse().expect("test URL"))
            .expect("valid settings")
            .map(|u| u.to_string())
    }

    #[test]
    fn env_rules_follow_curl() {
        let s = vars(&[
            ("HTTPS_PROXY", "http://secure-proxy:3128"),
            ("http_proxy", "plain-proxy:8080"),
            ("ALL_PROXY", "http://fallback:1"),
            ("NO_PROXY", "internal.example, 10.0.0.0/8, ::1"),
        ]);
        assert_eq!(
            proxy(&s, "https://pgapi.easypay.co.kr/x").as_deref(),
            Some("http://secure-proxy:3128/")
        );
        assert_eq!(
            proxy(&s, "http://127.0.0.1:8780/").as_deref(),
            Some("http://plain-proxy:8080/")
        );
        // NO_PROXY: the domain and its subdomains, a network, an IPv6 address.
        assert_eq!(proxy(&s, "https://internal.example/"), None);
        assert_eq!(proxy(&s, "https://api.internal.example/"), None);
        assert!(proxy(&s, "https://notinternal.example/").is_some());
        assert_eq!(proxy(&s, "https://10.1.2.3/"), None);
        assert_eq!(proxy(&s, "http://[::1]:8780/"), None);
    }

    #[test]
    fn all_proxy_fills_in_and_upper_case_wins() {
        let s = vars(&[
            ("all_proxy", "http://fallback:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("https_proxy", "http://lower:3"),
        ]);
        assert_eq!(
            proxy(&s, "https://a.example/").as_deref(),
            Some("http://upper:2/")
        );
        assert_eq!(
            proxy(&s, "http://localhost/").as_deref(),
            Some("http://fallback:1/")
        );
    }

    #[test]
    fn no_variables_and_cgi_mean_direct() {
        assert_eq!(proxy(&vars(&[]), "https://a.example/"), None);
        let cgi = vars(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")]);
        assert_eq!(proxy(&cgi, "http://127.0.0.1/"), None);
        let star = vars(&[("ALL_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(proxy(&star, "https://a.example/"), None);
    }

    #[test]
    fn explicit_proxy_honours_no_proxy() {
        let s = ProxySettings::all("http://p:3128").no_proxy("a.example");
        assert_eq!(proxy(&s, "https://a.example/"), None);
        assert_eq!(
            proxy(&s, "https://b.example/").as_deref(),
            Some("http://p:3128/")
        );
    }

    #[test]
    fn unsupported_or_broken_proxy_urls_are_config_errors_without_secrets() {
        for (url, expect) in [
            ("https://user:hunter2@p:443", "https:// proxies"),
            ("socks5://user:hunter2@p:1080", "socks5 is not supported"),
            ("http://user:hunter2@:3128", "no host"),
            ("http://us er:hunter2@p:1", "not a URL"),
        ] {
            let err = ProxySettings::all(url)
                .proxy_for(&"https://a.example/".parse().expect("uri"))
                .expect_err(url);
            let text = err.to_string();
            assert!(text.contains(expect), "{url}: {text}");
            assert!(text.contains("proxy"), "{url}: {text}");
            // Neither the message, nor its causes, nor Debug shows the password.
            let everything = format!("{} {err:?}", error_chain(&err));
            assert!(!everything.contains("hunter2"), "{url}: {everything}");
        }
    }

    #[test]
    fn a_proxy_value_that_is_not_a_url_keeps_the_parser_error() {
        let err = ProxySettings::all("http://us er:hunter2@p:1")
            .proxy_for(&"https://a.example/".parse().expect("uri"))
            .expect_err("not a URL");
        assert!(
            matches!(
                err,
                ConfigError::Proxy {
                    setting: "proxy",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "proxy setting proxy: not a URL; expected http://[user:password@]host:port"
        );
        let cause = std::error::Error::source(&err).expect("the parser's error is kept");
        assert!(
            cause.downcast_ref::<http::uri::InvalidUri>().is_some(),
            "{cause:?}"
        );
        assert!(
            !error_chain(&err).contains("hunter2"),
            "{}",
            error_chain(&err)
        );
    }

    #[test]
    fn debug_and_redact_hide_credentials() {
        let s = ProxySettings::all("http://alice:hunter2@proxy.corp:3128");
        let debug = format!("{s:?}");
        assert!(debug.contains("http://***@proxy.corp:3128"), "{debug}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("alice"),
            "{debug}"
        );
        assert_eq!(redact("proxy:3128"), "http://proxy:3128");
        assert_eq!(redact("not a url with hunter2"), "<not a URL>");
    }

    #[test]
    fn credentials_become_basic_auth() {
        let routes =
            Routes::new(&ProxySettings::all("http://Aladdin:open%20sesame@p:1")).expect("valid");
        let i = routes
            .intercept(&"https://a.example/".parse().expect("uri"))
            .expect("proxied");
        assert_eq!(i.uri().to_string(), "http://p:1/");
        assert_eq!(
            i.basic_auth().and_then(|v| v.to_str().ok()),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
    }
}
