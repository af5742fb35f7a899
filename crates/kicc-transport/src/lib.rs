//! The transport layer of kicc-rs.
//!
//! - [`Transport`]: the seam. One async method, request in, response out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod seam;

pub use seam::{HttpRequest, HttpResponse, Transport, TransportError};
