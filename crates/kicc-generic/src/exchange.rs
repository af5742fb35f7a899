//! The generic cancel's exchange: how its retries are rebuilt.

use std::time::SystemTime;

use bytes::Bytes;
use kicc_core::message::interpret_response;
use kicc_core::retry::{Exchange, Interpreted, Resend};
use kicc_core::{Channel, FieldError, KoreaDate, Merchant, ShopTransactionId};

use crate::request::{CancelRequest, ReviseRequest};
use crate::response::ReviseResponse;

/// One generic cancel on the wire, rebuilt for each resend as the API documents: after a
/// timeout or `VTIM` / `VT00` the next attempt is a refund query (`refundQueryFlag = "Y"`)
/// with a NEW `shopTransactionId` (a reused one would be a duplicate) and TODAY's date.
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

    fn interpret(&self, body: &[u8]) -> Interpreted<ReviseResponse> {
        interpret_response(body, self.shop_transaction_id())
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
            Resend::RefundQuery { new_key, now } => (new_key, now, true),
        };
        let message = self
            .intent
            .message_with(self.merchant, key, now, refund_query);
        self.request = message.to_http(self.merchant)?;
        self.message = message;
        Ok(())
    }
}
