//! The default [`Transport`](crate::Transport): hyper 1 + hyper-util's pooled client + hyper-rustls.
//!
//! Files import only downward: `error` (nothing), `proxy` (error), `policy`, `connector`
//! (error, policy, proxy), `transport` (connector, error, policy, proxy), `config` (all of
//! them: it builds the transport). This file only declares and re-exports.

mod config;
mod connector;
mod error;
mod policy;
mod proxy;
mod transport;

pub use config::{
    TransportConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY_SIZE,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE_PER_HOST, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use error::ConfigError;
pub use proxy::ProxySettings;
pub use transport::HyperTransport;
