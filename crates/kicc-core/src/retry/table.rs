//! The retry table: what one observation leads to, by the channel's retry style.

use crate::revise::RetryStyle;

/// An attempt's end, reduced to what matters for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// `A210`..`A219`.
    GatewayRetry,
    /// `VTIM` / `VT00`.
    GatewayRefundQuery,
    /// HTTP 5xx, 408, 429, a timeout, a lost connection, an unreadable 200, or a `0000` that
    /// is not tied to this request: maybe processed.
    OutcomeUnknown,
    /// The connection was never made.
    NotDelivered,
    /// Another HTTP status: refused before processing.
    Rejected,
}

impl Observed {
    /// Whether the attempt may have been processed by KICC.
    pub(crate) fn may_have_been_processed(self) -> bool {
        !matches!(self, Observed::NotDelivered | Observed::Rejected)
    }
}

/// How the next attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResendKind {
    /// The same bytes (Alipay / WeChat Pay: same key, same `cancelReqDate`).
    Identical,
    /// The last request never reached KICC: send it again (the generic API refreshes
    /// `cancelReqDate` if the Korea date changed; the key is unused so it stays).
    Undelivered,
    /// Every earlier key was proven not processed: a new cancel with a new key, dated today.
    Fresh,
}

/// What to do about an observation that is not a final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try again, made as said (within the attempts and the deadline).
    Retry(ResendKind),
    /// Look up every key that may have been processed before anything else is sent.
    LookUp,
    /// Stop: no retry can help.
    Stop,
}

/// The retry table: what a channel with `style` does after `observed`.
///
/// | observed | Alipay / WeChat Pay ([`RetryStyle::SameRequest`]) | generic ([`RetryStyle::LookUp`]) |
/// |---|---|---|
/// | `A210`..`A219` | resend identical bytes | look up |
/// | `VTIM` / `VT00` | resend identical bytes | look up |
/// | timeout, lost connection, HTTP 5xx/408/429, unreadable or untied 200 | resend identical bytes | look up |
/// | connection never made | resend (same key) | resend (same key, today's date) |
/// | other HTTP status | stop | stop |
///
/// Status queries ([`RetryStyle::Query`]) resend a new query with a new key after anything
/// but a refusal.
///
/// A final `resCd` is not in the table: it ends the cancel (declined, or ambiguous if an
/// earlier attempt may have been processed), and a tied `0000` ends it as done.
pub(crate) fn decide(style: RetryStyle, observed: Observed) -> Decision {
    use Decision::*;
    use Observed::*;
    match (style, observed) {
        (_, Rejected) => Stop,
        (_, NotDelivered) => Retry(ResendKind::Undelivered),
        (RetryStyle::SameRequest, GatewayRetry | GatewayRefundQuery | OutcomeUnknown) => {
            Retry(ResendKind::Identical)
        }
        (RetryStyle::LookUp, GatewayRetry | GatewayRefundQuery | OutcomeUnknown) => LookUp,
        (RetryStyle::Query, GatewayRetry | GatewayRefundQuery | OutcomeUnknown) => {
            Retry(ResendKind::Fresh)
        }
    }
}
