//! Layer 3, rules for the WeChat Pay Global endpoints: sans-IO functions on
//! `&mut State` that return a plain [`answer::Answer`] (or a signed
//! `http::Response<Bytes>`), in the documented check order.

pub(crate) mod answer;
pub(crate) mod checks;
pub(crate) mod endpoint;
pub(crate) mod log;
pub(crate) mod query;
pub(crate) mod revoke;
pub(crate) mod sign;
