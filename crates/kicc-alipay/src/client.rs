//! The Alipay cancel client (feature `transport`; `new` with `hyper`).

use std::time::SystemTime;

use kicc_core::retry::RetryPolicy;
use kicc_core::{Error, Merchant, ShopTransactionId};
use kicc_transport::driver::{execute, os_rng, resume, CancelLabels};
use kicc_transport::Transport;
#[cfg(feature = "hyper")]
use kicc_transport::{ConfigError, HyperTransport};

use crate::api::{CancelRequest, ReviseRequest, ReviseResponse};

// One definition, two generic headers: with the feature `hyper` the transport
// defaults to `HyperTransport`; with `transport` alone there is no hyper to default to.
macro_rules! client_struct {
    ($($default:ty)?) => {
        /// Cancels Alipay payments through KICC.
        ///
        /// One client holds one pooled connection set (clone the transport, not the client, to share
        /// it). A cancel is retried as the API requires: the same message, same key and same
        /// `cancelReqDate`, after a timeout, a lost connection, HTTP 5xx or `A210`..`A219`, within
        /// the [`RetryPolicy`]; if no final answer comes, the error is
        /// [`Error::Ambiguous`]: query the payment before doing anything else.
        #[derive(Debug, Clone)]
        pub struct AlipayClient<T $(= $default)?> {
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
impl AlipayClient<HyperTransport> {
    /// A client on the default transport (hyper + rustls, webpki roots, 30 s per attempt).
    pub fn new(merchant: Merchant) -> Result<Self, ConfigError> {
        Ok(Self::with_transport(merchant, HyperTransport::new()?))
    }
}

impl<T: Transport> AlipayClient<T> {
    /// A client on `transport`.
    pub fn with_transport(merchant: Merchant, transport: T) -> Self {
        AlipayClient {
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

    /// Cancels with your own idempotency key, dated now.
    pub async fn cancel_with_key(
        &self,
        request: &CancelRequest,
        key: ShopTransactionId,
    ) -> Result<ReviseResponse, Error> {
        // The message is not kept, so the exchange takes its key and pgCno over (`send`
        // borrows a message the caller keeps, and copies them).
        let exchange = request
            .message(&self.merchant, key, SystemTime::now())
            .into_exchange(&self.merchant)?;
        let labels = CancelLabels::new("alipay", request.pg_cno().as_str());
        execute(&self.transport, exchange, self.retry.clone(), labels).await
    }

    /// Sends a message made earlier, unchanged. Use it to resume after a crash: store the
    /// message before sending, and resend the stored one (same key, same date) if you never
    /// learned its outcome.
    pub async fn send(&self, message: &ReviseRequest) -> Result<ReviseResponse, Error> {
        let exchange = message.exchange(&self.merchant)?;
        let labels = CancelLabels::new("alipay", message.head().pg_cno().as_str());
        execute(&self.transport, exchange, self.retry.clone(), labels).await
    }

    /// Resends a message whose earlier sending may have been processed (same key, same
    /// `cancelReqDate`, byte for byte, also after midnight): the gateway answers the first
    /// outcome again. Since the first may have cancelled, any decline is then
    /// [`Error::Ambiguous`], never "did not happen".
    pub async fn resume(&self, message: &ReviseRequest) -> Result<ReviseResponse, Error> {
        let exchange = message.exchange(&self.merchant)?;
        let labels = CancelLabels::new("alipay", message.head().pg_cno().as_str());
        let sent = vec![kicc_core::retry::SentAttempt::new(
            message.head().shop_transaction_id().clone(),
            message.head().cancel_req_date(),
        )];
        resume(&self.transport, exchange, self.retry.clone(), sent, labels).await
    }
}
