//! [`ConfigError`], and the one-line description of an error chain used in messages.

use std::error::Error as StdError;

/// A [`TransportConfig`](crate::TransportConfig) that cannot be turned into a [`HyperTransport`](crate::HyperTransport).
///
/// Each variant names the setting and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration or size setting is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The setting, as named by its [`TransportConfig`](crate::TransportConfig) method.
        field: &'static str,
    },
    /// The user agent is empty or not a valid HTTP header value.
    #[error("user_agent must be non-empty visible ASCII (spaces allowed, no control characters)")]
    InvalidUserAgent,
    /// Root-certificate PEM data could not be parsed.
    #[error("root certificates: PEM data could not be read: {reason}")]
    InvalidPem {
        /// What the PEM parser objected to.
        reason: String,
    },
    /// Root-certificate PEM data was given but holds no `CERTIFICATE` block.
    #[error("root certificates: PEM data #{index} contains no CERTIFICATE block")]
    NoCertificateInPem {
        /// Which PEM argument (0-based, in the order they were added).
        index: usize,
    },
    /// A `CERTIFICATE` block is not a certificate that can serve as a trust anchor.
    #[error("root certificates: certificate #{index} cannot be used as a trust anchor: {reason}")]
    BadCertificate {
        /// Which certificate (0-based, counted over all PEM data in order).
        index: usize,
        /// Why it was rejected.
        reason: String,
    },
    /// The operating system's certificate store could not be loaded.
    #[error("native root certificates could not be loaded: {reason}")]
    NativeRoots {
        /// What went wrong (no usable certificate, unreadable store, ...).
        reason: String,
    },
    /// A proxy setting is invalid or names an unsupported kind of proxy. The
    /// reason shows the proxy URL with its credentials replaced by `***`.
    #[error("proxy setting {setting}: {reason}")]
    Proxy {
        /// The environment variable (`HTTPS_PROXY`, `all_proxy`, ...) or the
        /// [`TransportConfig`](crate::TransportConfig) setting (`proxy`) that holds the bad value.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls rejected the TLS configuration.
    #[error("TLS configuration: {reason}")]
    Tls {
        /// rustls' reason.
        reason: String,
    },
}

/// The error and its chain of causes on one line: `a: b: c`.
pub(super) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("inner")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    impl StdError for Inner {}

    #[test]
    fn describe_walks_the_whole_chain() {
        assert_eq!(describe(&Outer(Inner)), "outer: inner");
    }
}
