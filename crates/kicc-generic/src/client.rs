//! The generic cancel client (feature `transport`; `new` with `hyper`).

use std::time::SystemTime;

use kicc_core::retry::RetryPolicy;
use kicc_core::retry::SentAttempt;
use kicc_core::{Error, Merchant, ShopTransactionId};
use kicc_transport::driver::{execute, os_rng, resume, CancelLabels};
use kicc_transport::Transport;
#[cfg(feature = "hyper")]
use kicc_transport::{ConfigError, HyperTransport};

use crate::exchange::GenericExchange;
use crate::request::CancelRequest;
use crate::response::ReviseResponse;

// One definition, two generic headers: with the feature `hyper` the transport
// defaults to `HyperTransport`; with `transport` alone there is no hyper to default to.
macro_rules! client_struct {
    ($($default:ty)?) => {
        /// Cancels (and captures) card, bank transfer, mobile and cash receipt payments through
        /// KICC's generic revise API.
        ///
        /// One client holds one pooled connection set. A cancel is retried as the API requires:
        /// after a timeout, a lost connection, HTTP 5xx or `VTIM` / `VT00`, the next attempt is a
        /// refund query (`refundQueryFlag = "Y"`) with a NEW key and today's date, within the
        /// [`RetryPolicy`]; if no final answer comes, the error is [`Error::Ambiguous`]: query the
        /// payment before doing anything else.
        #[derive(Debug, Clone)]
        pub struct GenericClient<T $(= $default)?> {
            merchant: Merchant,
            transport: T,
            retry: RetryPolicy,
        }
    };
}

#[cfg(feature = "hyper")]
client_struct!(HyperTransport);
#[cfg(not(feature = "hyper"))]
client_struct!();

#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
impl GenericClient<HyperTransport> {
    /// A client on the default transport (hyper + rustls, webpki roots, 30 s per attempt).
    pub fn new(merchant: Merchant) -> Result<Self, ConfigError> {
        Ok(Self::with_transport(merchant, HyperTransport::new()?))
    }
}

impl<T: Transport> GenericClient<T> {
    /// A client on `transport`.
    pub fn with_transport(merchant: Merchant, transport: T) -> Self {
        GenericClient {
            merchant,
            transport,
            retry: RetryPolicy::default(),
        }
    }

    /// The same client with these retry bounds (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry bounds each request runs under.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The merchant.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// The transport requests go through.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Cancels with a newly generated idempotency key, dated now.
    pub async fn cancel(&self, request: &CancelRequest) -> Result<ReviseResponse, Error> {
        let key = ShopTransactionId::generate(SystemTime::now(), &mut os_rng());
        self.cancel_with_key(request, key).await
    }

    /// Cancels with your own idempotency key for the first attempt, dated now. Resends after
    /// an unknown outcome use new keys, as the API requires.
    pub async fn cancel_with_key(
        &self,
        request: &CancelRequest,
        key: ShopTransactionId,
    ) -> Result<ReviseResponse, Error> {
        let exchange =
            GenericExchange::new(&self.merchant, request.clone(), key, SystemTime::now())?;
        let labels = CancelLabels::new("generic", request.pg_cno().as_str());
        execute(&self.transport, exchange, self.retry.clone(), labels).await
    }

    /// Finishes a cancel whose outcome is unknown without risking a second one: looks up every
    /// key in `sent` (from [`Error::Ambiguous`] or your journal) with its own date, no sooner
    /// than the processing bound after its send; returns the cancel a key made, or, only when
    /// none was processed, sends `request` anew with a new key.
    pub async fn resume(
        &self,
        request: &CancelRequest,
        sent: Vec<SentAttempt>,
    ) -> Result<ReviseResponse, Error> {
        let key = ShopTransactionId::generate(SystemTime::now(), &mut os_rng());
        let exchange =
            GenericExchange::new(&self.merchant, request.clone(), key, SystemTime::now())?;
        let labels = CancelLabels::new("generic", request.pg_cno().as_str());
        resume(&self.transport, exchange, self.retry.clone(), sent, labels).await
    }

    /// Like [`GenericClient::resume`], but the first new attempt (if any) is a refund query
    /// (`refundQueryFlag = "Y"`) keyed `key`: a refund query can itself cancel, so it is only
    /// ever sent after the earlier keys were looked up.
    pub async fn resume_with_refund_query(
        &self,
        request: &CancelRequest,
        sent: Vec<SentAttempt>,
        key: ShopTransactionId,
    ) -> Result<ReviseResponse, Error> {
        let policy = self
            .retry
            .to_builder()
            .refund_query_on_resend(true)
            .build()?;
        let exchange =
            GenericExchange::refund_query(&self.merchant, request.clone(), key, SystemTime::now())?;
        let labels = CancelLabels::new("generic", request.pg_cno().as_str());
        resume(&self.transport, exchange, policy, sent, labels).await
    }
}
