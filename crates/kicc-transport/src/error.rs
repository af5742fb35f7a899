//! [`TransportError`]: why one attempt produced no response, split by what it means for money,
//! with the underlying error (io, hyper, rustls, ...) kept as `source()`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The underlying error of a transport failure, shared so that errors stay `Clone`.
type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// Why one attempt produced no response.
///
/// The split that matters for money is [`TransportError::may_have_reached_server`]:
/// a request that never left (connection refused, DNS, TLS handshake, a proxy that
/// would not forward it, a request the client would not send) cannot have cancelled
/// anything; one that timed out or lost its connection after being written may have.
///
/// | variant | reached the server? | [`is_timeout`](Self::is_timeout) |
/// |---|---|---|
/// | [`Connect`](Self::Connect) | no | no |
/// | [`Refused`](Self::Refused) | no | no |
/// | [`Timeout`](Self::Timeout) | maybe | yes |
/// | [`Io`](Self::Io) | maybe | no |
///
/// `source()` is the underlying error (an `std::io::Error`, a hyper or rustls error, ...)
/// when there is one; each variant's payload says which step failed (its `kind()`).
/// Two errors are equal when their variant, kind and message are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection to the server could be made (DNS, refused, TLS handshake, the
    /// proxy's own failure): nothing was sent to the server. [`ConnectError::kind`]
    /// says which step failed.
    #[error(transparent)]
    Connect(ConnectError),
    /// The client would not send the request (plain HTTP to a non-loopback host, a
    /// relative URI, no runtime, ...): nothing was sent. [`RefusedError::kind`] says why.
    #[error(transparent)]
    Refused(RefusedError),
    /// No complete response within the per-attempt timeout; the request may have arrived.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection failed, or the answer could not be read, after the request may
    /// have been written. [`IoError::kind`] says what happened.
    #[error(transparent)]
    Io(IoError),
}

impl TransportError {
    /// `false` only when the request certainly never reached the server.
    pub fn may_have_reached_server(&self) -> bool {
        matches!(self, TransportError::Timeout(_) | TransportError::Io(_))
    }

    /// `true` when the attempt ran out of time (the request may have arrived).
    pub fn is_timeout(&self) -> bool {
        matches!(self, TransportError::Timeout(_))
    }
}

/// `error` and its chain of causes (`source()`) on one line: `a: b: c`. For a log line or a
/// command's one-line error, where the cause of a [`TransportError`] or a `ConfigError` must
/// not be lost.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The three payloads share one shape: a kind, a message and an optional cause.
macro_rules! detailed_error {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:ident, $prefix:literal
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name {
            kind: $kind,
            message: String,
            source: Option<Cause>,
        }

        impl $name {
            #[doc = concat!("A ", stringify!($name), " of `kind`, described by `message`.")]
            pub fn new(kind: $kind, message: impl Into<String>) -> Self {
                $name {
                    kind,
                    message: message.into(),
                    source: None,
                }
            }

            /// The same error, with the underlying cause that `source()` returns.
            pub fn with_source(
                mut self,
                source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
            ) -> Self {
                self.source = Some(Arc::from(source.into()));
                self
            }

            /// What failed.
            pub fn kind(&self) -> $kind {
                self.kind
            }

            #[doc = concat!("The message, without the `", $prefix, "` prefix that `Display` adds.")]
            pub fn message(&self) -> &str {
                &self.message
            }
        }

        impl From<String> for $name {
            #[doc = concat!("A [`", stringify!($kind), "::Other`] error with this message.")]
            fn from(message: String) -> Self {
                $name::new($kind::Other, message)
            }
        }

        impl From<&str> for $name {
            #[doc = concat!("A [`", stringify!($kind), "::Other`] error with this message.")]
            fn from(message: &str) -> Self {
                $name::new($kind::Other, message)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.kind == other.kind && self.message == other.message
            }
        }

        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("kind", &self.kind)
                    .field("message", &self.message)
                    .field("source", &self.source.as_deref().map(|e| error_chain(e)))
                    .finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.message)
            }
        }

        impl StdError for $name {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.source
                    .as_deref()
                    .map(|s| s as &(dyn StdError + 'static))
            }
        }
    };
}

/// Which step of opening a connection failed, for [`ConnectError`].
///
/// Every kind means the same thing for money: the request was not sent to the
/// server. The kinds say what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server's host name could not be resolved.
    Dns,
    /// The server refused the TCP connection (nothing listens on that port).
    Refused,
    /// The connection (DNS, TCP, proxy tunnel and TLS handshake together) was not
    /// established within the connect timeout.
    Timeout,
    /// The TLS handshake failed: untrusted or wrong certificate, no common protocol.
    Tls,
    /// The configured local (source) address could not be used.
    LocalAddress,
    /// The proxy itself could not be reached: its host name did not resolve, it
    /// refused the connection, or it closed it.
    ProxyUnreachable,
    /// The proxy demands authentication (HTTP 407): no credentials were given, or
    /// it rejected the ones given.
    ProxyAuthentication,
    /// The proxy refused to forward the request or open the tunnel (a `CONNECT`
    /// answer other than 200, or one that is not HTTP).
    ProxyRejected,
    /// Anything else that kept the connection from being established.
    Other,
}

impl ConnectErrorKind {
    /// `true` for the kinds that are the proxy's own failure.
    pub fn is_proxy(self) -> bool {
        matches!(
            self,
            ConnectErrorKind::ProxyUnreachable
                | ConnectErrorKind::ProxyAuthentication
                | ConnectErrorKind::ProxyRejected
        )
    }
}

detailed_error! {
    /// A connection that could not be established: a [`ConnectErrorKind`] and a
    /// one-line message that names the host (and the proxy, without its
    /// credentials) and, where it helps, what to do.
    ///
    /// `source()` returns the underlying error (an `std::io::Error`, a rustls
    /// error, ...) when there is one. Two `ConnectError`s are equal when their kind
    /// and message are.
    ConnectError, ConnectErrorKind, "could not connect: "
}

/// Why the client would not send a request, for [`RefusedError`].
///
/// Every kind means the same thing for money: nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusedKind {
    /// Plain `http://` to a host that is not loopback: a cancel never crosses a
    /// network in clear text.
    PlainHttp,
    /// The URI is not absolute (no scheme or host) or its scheme is not HTTP(S).
    InvalidUri,
    /// The transport needs a runtime (Tokio, for `HyperTransport`) and none is running.
    NoRuntime,
    /// The request itself could not be built or is not valid HTTP.
    InvalidRequest,
    /// Any other reason.
    Other,
}

detailed_error! {
    /// A request the client refused to send: a [`RefusedKind`] and a message that
    /// names the rule. Nothing was sent. `source()` returns the underlying error,
    /// if any.
    RefusedError, RefusedKind, "request refused by the client: "
}

/// What went wrong after the request may have been written, for [`IoError`].
///
/// Every kind means the same thing for money: the request may have reached the
/// server, so its outcome is unknown. The kinds say what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoErrorKind {
    /// The connection was closed or reset before the complete response arrived.
    ConnectionLost,
    /// The answer was not valid HTTP.
    MalformedResponse,
    /// The response body was larger than the configured limit.
    ResponseTooLarge,
    /// Anything else after the request may have been written.
    Other,
}

detailed_error! {
    /// A failure after the request may have been written: an [`IoErrorKind`] and a
    /// one-line message. `source()` returns the underlying error (a hyper or io
    /// error, ...) when there is one.
    IoError, IoErrorKind, "connection lost: "
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_displays_as_before_and_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = TransportError::Connect(
            ConnectError::new(ConnectErrorKind::Refused, "connection refused by h:1")
                .with_source(io),
        );
        assert_eq!(
            e.to_string(),
            "could not connect: connection refused by h:1"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("refused")
        );
        assert!(!e.may_have_reached_server());
        let plain = TransportError::Connect("refused".into());
        assert_eq!(plain.to_string(), "could not connect: refused");
        assert!(matches!(plain, TransportError::Connect(c) if c.kind() == ConnectErrorKind::Other));
    }

    #[test]
    fn refused_and_io_keep_their_display_and_their_source() {
        let refused = TransportError::Refused(
            RefusedError::new(RefusedKind::InvalidRequest, "bad header")
                .with_source(std::io::Error::other("header value has a newline")),
        );
        assert_eq!(
            refused.to_string(),
            "request refused by the client: bad header"
        );
        assert_eq!(
            refused.source().map(ToString::to_string).as_deref(),
            Some("header value has a newline")
        );
        assert!(!refused.may_have_reached_server());
        assert!(!refused.is_timeout());

        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let io = TransportError::Io(
            IoError::new(IoErrorKind::ConnectionLost, "connection reset").with_source(reset),
        );
        assert_eq!(io.to_string(), "connection lost: connection reset");
        let source = io.source().expect("the io error is kept");
        assert_eq!(
            source
                .downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        assert!(io.may_have_reached_server());
        assert!(!io.is_timeout());
        // Debug shows the cause's chain, Clone keeps it.
        let cloned = io.clone();
        assert!(format!("{cloned:?}").contains("reset by peer"));
        assert!(cloned.source().is_some());

        let timeout = TransportError::Timeout(Duration::from_secs(30));
        assert!(timeout.may_have_reached_server() && timeout.is_timeout());
        assert!(timeout.source().is_none());
    }

    #[test]
    fn strings_convert_to_the_other_kind_and_equality_ignores_the_source() {
        let a: IoError = "x".into();
        assert_eq!(a.kind(), IoErrorKind::Other);
        let b = IoError::new(IoErrorKind::Other, "x").with_source(std::io::Error::other("y"));
        assert_eq!(a, b);
        let r: RefusedError = String::from("no").into();
        assert_eq!(r.kind(), RefusedKind::Other);
        assert_ne!(r, RefusedError::new(RefusedKind::PlainHttp, "no"));
    }
}
