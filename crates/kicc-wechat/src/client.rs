//! The WeChat Pay cancel client (feature `transport`; `new` with `hyper`).

use std::time::{Instant, SystemTime};

use kicc_core::retry::RetryPolicy;
use kicc_core::{Error, Merchant, ShopTransactionId};
use kicc_transport::driver::{execute, os_rng, resume, CancelLabels};
use kicc_transport::Transport;
#[cfg(feature = "hyper")]
use kicc_transport::{ConfigError, HyperTransport};

use crate::api::{CancelRequest, ReviseRequest, ReviseResponse, WebhookInbox};
use crate::status::{FindRequest, FindResponse, StatusQuery};
use crate::wait::{CancelResult, ResultWaiter, WaitAction, WaitPolicy};

/// A cancel KICC accepted; its result comes later ([`WechatClient::wait_for_result`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The payment.
    pub pg_cno: String,
    /// The cancellation, to wait for or query.
    pub cancel_pg_cno: String,
    /// The key of the accepted request.
    pub shop_transaction_id: String,
    /// KICC's answer.
    pub response: ReviseResponse,
}

// One definition, two generic headers: with the feature `hyper` the transport
// defaults to `HyperTransport`; with `transport` alone there is no hyper to default to.
macro_rules! client_struct {
    ($($default:ty)?) => {
        /// Cancels WeChat Pay payments through KICC, and learns their results.
        ///
        /// [`WechatClient::cancel`] returns [`Accepted`]: KICC took the request, the money has not
        /// moved yet. [`WechatClient::wait_for_result`] waits for the webhook (handled by a
        /// [`WebhookInbox`]) and falls back to the status query. Retries of the cancel resend the
        /// same message (same key, same `cancelReqDate`), as the API requires.
        #[derive(Debug, Clone)]
        pub struct WechatClient<T $(= $default)?> {
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
impl WechatClient<HyperTransport> {
    /// A client on the default transport (hyper + rustls, webpki roots, 30 s per attempt).
    pub fn new(merchant: Merchant) -> Result<Self, ConfigError> {
        Ok(Self::with_transport(merchant, HyperTransport::new()?))
    }
}

impl<T: Transport> WechatClient<T> {
    /// A client on `transport`.
    pub fn with_transport(merchant: Merchant, transport: T) -> Self {
        WechatClient {
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

    /// Submits a cancel with a newly generated key, dated now.
    pub async fn cancel(&self, request: &CancelRequest) -> Result<Accepted, Error> {
        let key = ShopTransactionId::generate(SystemTime::now(), &mut os_rng());
        let message = request.message(&self.merchant, key, SystemTime::now());
        self.send(&message).await
    }

    /// Sends a message made earlier, unchanged.
    pub async fn send(&self, message: &ReviseRequest) -> Result<Accepted, Error> {
        self.send_or_resume(message, false).await
    }

    /// Resends a message whose earlier sending may have been processed (same key, same
    /// `cancelReqDate`, byte for byte, also after midnight); any decline is then
    /// [`Error::Ambiguous`], since the first sending may have been accepted.
    pub async fn resume(&self, message: &ReviseRequest) -> Result<Accepted, Error> {
        self.send_or_resume(message, true).await
    }

    async fn send_or_resume(
        &self,
        message: &ReviseRequest,
        resumed: bool,
    ) -> Result<Accepted, Error> {
        let exchange = message.exchange(&self.merchant)?;
        let labels = CancelLabels::new("wechat", message.head().pg_cno().as_str());
        let response = if resumed {
            let sent = vec![kicc_core::retry::SentAttempt::new(
                message.head().shop_transaction_id().clone(),
                message.head().cancel_req_date(),
            )];
            resume(&self.transport, exchange, self.retry.clone(), sent, labels).await?
        } else {
            execute(&self.transport, exchange, self.retry.clone(), labels).await?
        };
        let key = message.head().shop_transaction_id().to_string();
        if response.cancel_pg_cno.is_empty() {
            // Accepted, but without the ID there is no way to follow it: say so.
            return Err(Error::Ambiguous {
                reason: "accepted without a cancelPgCno; query the payment".into(),
                shop_transaction_id: key,
                attempts: 1,
                last_res_cd: Some(response.res_cd),
                sent: vec![kicc_core::retry::SentAttempt::new(
                    message.head().shop_transaction_id().clone(),
                    message.head().cancel_req_date(),
                )],
                lookup_after: None,
            });
        }
        Ok(Accepted {
            pg_cno: message.head().pg_cno().to_string(),
            cancel_pg_cno: response.cancel_pg_cno.clone(),
            shop_transaction_id: key,
            response,
        })
    }

    /// Asks for the status of one cancellation (`find`), with a new key.
    pub async fn status(&self, query: &StatusQuery) -> Result<FindResponse, Error> {
        let key = ShopTransactionId::generate(SystemTime::now(), &mut os_rng());
        self.status_keyed(&query.message(&self.merchant, key)).await
    }

    /// [`WechatClient::status`] with a message you built (its key is used for the first
    /// attempt only; resends get new keys).
    pub async fn status_keyed(&self, message: &FindRequest) -> Result<FindResponse, Error> {
        let exchange = message.exchange(&self.merchant)?;
        let labels = CancelLabels::new("wechat-find", message.pg_cno().as_str());
        execute(&self.transport, exchange, self.retry.clone(), labels).await
    }

    /// Waits for the final result of `accepted`: a notice in `inbox` (confirmed by a status
    /// query unless the policy says otherwise), or the status query after
    /// [`WaitPolicy::first_query_after`]; [`Error::Pending`] after [`WaitPolicy::max_wait`].
    pub async fn wait_for_result(
        &self,
        accepted: &Accepted,
        inbox: &WebhookInbox,
        policy: WaitPolicy,
    ) -> Result<CancelResult, Error> {
        let query = StatusQuery::from_text(&accepted.pg_cno, &accepted.cancel_pg_cno)?;
        let mut waiter = ResultWaiter::new(
            &accepted.pg_cno,
            &accepted.cancel_pg_cno,
            &accepted.shop_transaction_id,
            policy,
            Instant::now(),
        );
        loop {
            // A notice may have arrived before we started or while we queried.
            if let Some(n) = inbox.notice_for(&accepted.cancel_pg_cno) {
                waiter.on_notice(&n, Instant::now());
            }
            match waiter.poll(Instant::now()) {
                WaitAction::Done(result) => return result,
                WaitAction::QueryStatus => {
                    let outcome = self.status(&query).await;
                    waiter.on_status(outcome, Instant::now());
                }
                // Every query's outcome is reported before the next poll, so none is
                // awaited: a broken invariant. End with an error instead of spinning.
                WaitAction::AwaitStatus => {
                    return Err(Error::StatusUnknown {
                        reason: "internal error: the result waiter awaits a status query, \
                                 but none is in flight"
                            .into(),
                        shop_transaction_id: accepted.shop_transaction_id.clone(),
                    })
                }
                WaitAction::WaitForNotice(until) => {
                    let changed = inbox.changed();
                    if inbox.notice_for(&accepted.cancel_pg_cno).is_none() {
                        tokio::select! {
                            _ = changed => {}
                            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                        }
                    }
                }
            }
        }
    }
}
