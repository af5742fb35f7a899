//! The end-to-end load benchmark of kicc-rs: Alipay full cancels against the sandbox on
//! loopback, sent by several contenders under the same conditions.
//!
//! - [`Contender::Sdk`]: `kicc_alipay::AlipayClient` over the default `HyperTransport`; every
//!   request is validated, signed and serialized inside the timed call, and its response read
//!   by the SDK's rules (code, echoed key, shape).
//! - [`Contender::RawHyper`]: hyper-util's pooled client sending request bodies precomputed
//!   before the clock starts, checking only that `"resCd":"0000"` appears: the floor.
//! - [`Contender::Reqwest`]: a shared `reqwest::Client` with the JSON built by hand
//!   (`serde_json::json!`, `hmac` + `sha2` + `hex`), as a typical hand-written integration.
//! - [`Contender::SdkTransport`] (diagnostic): the SDK's `HyperTransport` alone sending the
//!   precomputed bodies.
//! - [`Contender::RawHyperSigned`]: the raw hyper client again, now building and signing
//!   each message (plain struct of `&str`, HMAC-SHA256 + hex) and reading each answer into a
//!   small serde struct (`resCd` 0000, echoed key) inside the timed call: the least a
//!   correct integration does per request.
//!
//! Every request cancels its own payment with its own `shopTransactionId` (the sandbox
//! refuses a reused key and an over-cancel), created before the clock starts. The binaries:
//! `kicc-bench` (throughput and latency, sandbox in-process, one multi-thread runtime) and
//! `kicc-bench-mem` (client-side heap per in-flight request, sandbox in a child process so
//! that only the client's allocations are counted). Both print one `name value unit` line
//! per figure on stdout and their progress on stderr. `kicc-bench-profile` runs the
//! in-memory client path (or its floor) N times for an instruction-count profiler such as
//! valgrind's callgrind (BENCHMARKS.md, "Cost per cancel").
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod contenders;
pub mod load;
pub mod stats;

pub use contenders::{Clients, Contender, Job};
pub use load::{run, RunResult};
pub use stats::{percentile, Figures};
