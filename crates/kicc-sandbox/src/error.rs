//! The sandbox's error type.

use std::net::SocketAddr;

/// Why starting or driving the sandbox failed. Messages name the field and the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The self-signed TLS material could not be created.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// A [`SandboxConfig`](crate::SandboxConfig) field breaks a rule.
    #[error("invalid sandbox config: {field} {rule}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// A payment to create breaks a rule.
    #[error("invalid payment: {field} {rule}")]
    InvalidPayment {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// A fault to inject breaks a rule.
    #[error("invalid fault: {field} {rule}")]
    InvalidFault {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
}
