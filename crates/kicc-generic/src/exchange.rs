//! The generic cancel's exchange: how its retries are rebuilt.

use std::time::SystemTime;

use bytes::Bytes;
use kicc_core::lookup::retrieve_request;
use kicc_core::message::interpret_response;
use kicc_core::retry::{Exchange, Expected, Interpreted, Resend};
use kicc_core::{Channel, FieldError, KoreaDate, Merchant, ShopTransactionId};

use crate::request::{CancelRequest, ReviseRequest};
use crate::response::ReviseResponse;

/// One generic cancel on the wire. After a timeout or `VTIM` / `VT00` its keys are looked up
/// (`retrieveTransaction`, see [`kicc_core::retry`]); only when none was processed is it
/// rebuilt with a NEW `shopTransactionId` (a reused one would be a duplicate) and TODAY's
/// date, as a refund query (`refundQueryFlag = "Y"`) only if the policy asks.
pub struct GenericExchange<'m> {
    merchant: &'m Merchant,
    intent: CancelRequest,
    message: ReviseRequest,
    request: http::Request<Bytes>,
}

impl<'m> GenericExchange<'m> {
    /// The exchange for `intent` from `merchant`, first keyed `key` at `now`.
    pub fn new(
        merchant: &'m Merchant,
        intent: CancelRequest,
        key: ShopTransactionId,
        now: SystemTime,
    ) -> Result<Self, FieldError> {
        let message = intent.message(merchant, key, now);
        let request = message.to_http(merchant)?;
        Ok(GenericExchange {
            merchant,
            intent,
            message,
            request,
        })
    }

    /// The exchange for `intent` whose first attempt is a refund query
    /// (`refundQueryFlag = "Y"`) keyed `key` at `now`.
    pub fn refund_query(
        merchant: &'m Merchant,
        intent: CancelRequest,
        key: ShopTransactionId,
        now: SystemTime,
    ) -> Result<Self, FieldError> {
        let message = intent.message_with(merchant, key, now, true);
        let request = message.to_http(merchant)?;
        Ok(GenericExchange {
            merchant,
            intent,
            message,
            request,
        })
    }

    /// The message of the current attempt.
    pub fn message(&self) -> &ReviseRequest {
        &self.message
    }
}

impl Exchange for GenericExchange<'_> {
    type Output = ReviseResponse;

    fn channel(&self) -> Channel {
        Channel::Generic
    }

    fn request(&self) -> &http::Request<Bytes> {
        &self.request
    }

    fn shop_transaction_id(&self) -> &ShopTransactionId {
        self.message.head().shop_transaction_id()
    }

    fn request_date(&self) -> Option<KoreaDate> {
        Some(self.message.head().cancel_req_date())
    }

    fn is_refund_query(&self) -> bool {
        self.message.is_refund_query()
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            pg_cno: self.intent.pg_cno().as_str(),
            amount: self.intent.amount().map(|a| a.minor_units()),
        }
    }

    fn interpret(&self, body: &[u8]) -> Interpreted<ReviseResponse> {
        // The echoed key is checked by the tie rule against the key asked about (the
        // current attempt's, or a looked-up one's), so any key is read here.
        let echoed = ReviseResponse::echoed_in(body);
        let key = echoed
            .as_deref()
            .and_then(|k| ShopTransactionId::new(k).ok())
            .unwrap_or_else(|| self.shop_transaction_id().clone());
        interpret_response(body, &key)
    }

    fn lookup(
        &self,
        key: &ShopTransactionId,
        date: KoreaDate,
    ) -> Option<Result<http::Request<Bytes>, FieldError>> {
        Some(retrieve_request(self.merchant, key, date))
    }

    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError> {
        let (key, now, refund_query) = match resend {
            Resend::Undelivered { now } => {
                // Nothing reached KICC: the key is unused. Only the date may need refreshing.
                if KoreaDate::of(now) == self.message.head().cancel_req_date() {
                    return Ok(());
                }
                (
                    self.shop_transaction_id().clone(),
                    now,
                    self.message.is_refund_query(),
                )
            }
            Resend::Fresh {
                new_key,
                now,
                refund_query,
            } => (new_key, now, refund_query),
        };
        let message = self
            .intent
            .message_with(self.merchant, key, now, refund_query);
        self.request = message.to_http(self.merchant)?;
        self.message = message;
        Ok(())
    }
}
