//! [`ConfigError`], and the one-line description of an error chain used in messages.

use std::error::Error as StdError;

use crate::error::error_chain;
use std::fmt;

/// The cause a [`ConfigError`] keeps; downcast it to the type its variant documents.
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A [`TransportConfig`](crate::TransportConfig) that cannot be turned into a [`HyperTransport`](crate::HyperTransport).
///
/// Each variant names the setting and the rule it breaks in one line. Where an
/// underlying error exists it is kept, not flattened into text:
/// [`source()`](std::error::Error::source) returns it, and the `Display` text
/// does not repeat it, so print the whole chain (`a: b: c`) to show a user
/// everything. No variant's text or cause contains a proxy password.
#[derive(Debug, thiserror::Error)]
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
    #[error("root certificates: PEM data #{index} could not be read")]
    InvalidPem {
        /// Which PEM argument (0-based, in the order they were added).
        index: usize,
        /// What the PEM parser objected to: a [`rustls_pki_types::pem::Error`].
        #[source]
        source: BoxError,
    },
    /// Root-certificate PEM data was given but holds no `CERTIFICATE` block.
    #[error("root certificates: PEM data #{index} contains no CERTIFICATE block")]
    NoCertificateInPem {
        /// Which PEM argument (0-based, in the order they were added).
        index: usize,
    },
    /// A `CERTIFICATE` block is not a certificate that can serve as a trust anchor.
    #[error("root certificates: certificate #{index} cannot be used as a trust anchor")]
    BadCertificate {
        /// Which certificate (0-based, counted over all PEM data in order).
        index: usize,
        /// Why it was rejected: a [`rustls::Error`].
        #[source]
        source: BoxError,
    },
    /// The operating system's certificate store could not be loaded.
    #[error("native root certificates could not be loaded: {summary}")]
    NativeRoots {
        /// What went wrong, without the causes: "the system store holds no
        /// usable certificate" or how many errors loading it produced.
        summary: String,
        /// The error that stopped the load, if there was one: a
        /// [`rustls_native_certs::Error`] when there was exactly one, otherwise
        /// a list whose text joins them all with `; `. `None` when the store
        /// was read but holds no usable certificate.
        #[source]
        source: Option<BoxError>,
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
        /// The URL parser's error (an [`http::uri::InvalidUri`], whose text
        /// never quotes the URL) when the value is not a URL at all.
        #[source]
        source: Option<BoxError>,
    },
    /// rustls rejected the TLS configuration.
    #[error("TLS configuration rejected by rustls")]
    Tls {
        /// rustls' reason: a [`rustls::Error`].
        #[source]
        source: BoxError,
    },
}

/// Several errors from loading the system store, reported as one cause.
#[derive(Debug)]
pub(super) struct NativeLoadErrors(pub(super) Vec<rustls_native_certs::Error>);

impl fmt::Display for NativeLoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&error_chain(error))?;
        }
        Ok(())
    }
}

impl StdError for NativeLoadErrors {}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn error_chain_walks_the_whole_chain() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }
}
