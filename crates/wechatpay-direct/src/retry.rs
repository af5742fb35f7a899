//! WeChat Pay's parameters of kicc-rs's one retry model.
//!
//! The model itself lives in `kicc_core::retry` (see its "One retry model" section): the
//! policy's attempts / backoff / deadline are [`AttemptBounds`], the delays come from
//! `kicc_core::retry::backoff_delay`, an attempt without an answer is "not delivered" or
//! "maybe delivered" by kicc-transport's `driver::never_delivered` (a refused connection is
//! not delivered and is resent, as for KICC), and the sequencing is
//! `kicc_core::retry::Resender`. What is WeChat Pay's own is here, as plain functions:
//!
//! - how a revoke answer reads ([`heard_of_revoke`]): a verified 204 is done; 5xx, timeouts
//!   and lost connections are unknown (resend the identical signed bytes); `SYSTEM_ERROR`, an
//!   unknown code or a 2xx that does not verify is "query the order first"; the documented
//!   refusals are refusals;
//! - what the order's `trade_state` proves ([`settlement_of_query`]);
//! - how an order query or certificate download answer reads ([`heard_of_answer`]);
//! - which host the next attempt uses ([`switches_host`]).

use std::time::Duration;

use kicc_core::retry::{AttemptBounds, Heard, Settlement};

use crate::ids::InvalidInput;
use crate::query::{QueryError, TradeState};
use crate::reverse::{NextStep, ReverseError, ReverseOutcome};

/// How many attempts each signed request gets, the backoff and deadline between them
/// ([`AttemptBounds`], the type KICC's policy shares), and how many revokes one settle may
/// sign. Build it with [`RetryPolicy::builder`].
///
/// ```
/// use std::time::Duration;
/// use wechatpay_direct::RetryPolicy;
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(200))
///     .build()?;
/// assert_eq!(policy.bounds().max_attempts(), 3);
/// assert_eq!(policy.max_revokes(), 2);
/// # Ok::<(), wechatpay_direct::InvalidInput>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    bounds: AttemptBounds,
    max_revokes: u32,
}

impl Default for RetryPolicy {
    /// 3 attempts per signed request (WeChat Pay: retry 5xx 2-3 times), backoff from 200 ms
    /// doubling to at most 2 s, within 60 s; at most 2 revokes per settle.
    fn default() -> Self {
        RetryPolicy {
            bounds: AttemptBounds::builder()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(200))
                .max_backoff(Duration::from_secs(2))
                .deadline(Duration::from_secs(60))
                .build(),
            max_revokes: 2,
        }
    }
}

impl RetryPolicy {
    /// The longest [`RetryPolicyBuilder::deadline`]: identical signed bytes must reach
    /// WeChat Pay within 5 minutes of signing, so resends stop well before.
    pub const MAX_DEADLINE: Duration = Duration::from_secs(240);

    /// A builder starting from [`RetryPolicy::default`].
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: RetryPolicy::default(),
        }
    }

    /// Attempts, backoff and deadline for each signed request.
    pub fn bounds(&self) -> &AttemptBounds {
        &self.bounds
    }

    /// The most revokes one settle signs: the first, and fresh ones after an order query
    /// found the order still paid.
    pub fn max_revokes(&self) -> u32 {
        self.max_revokes
    }
}

/// Builds a [`RetryPolicy`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// Attempts per signed request, the first included (0 is taken as 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.policy.bounds = self.policy.bounds.to_builder().max_attempts(n).build();
        self
    }

    /// The delay before the second attempt; it doubles for each later one.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.policy.bounds = self.policy.bounds.to_builder().initial_backoff(d).build();
        self
    }

    /// The longest delay between attempts.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.policy.bounds = self.policy.bounds.to_builder().max_backoff(d).build();
        self
    }

    /// No resend of a signed request starts later than this after its first attempt (at
    /// most [`RetryPolicy::MAX_DEADLINE`]).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.policy.bounds = self.policy.bounds.to_builder().deadline(d).build();
        self
    }

    /// The most revokes one settle signs (at least 1).
    pub fn max_revokes(mut self, n: u32) -> Self {
        self.policy.max_revokes = n.max(1);
        self
    }

    /// The policy; a deadline past [`RetryPolicy::MAX_DEADLINE`] is refused.
    pub fn build(self) -> Result<RetryPolicy, InvalidInput> {
        if self.policy.bounds.deadline() > RetryPolicy::MAX_DEADLINE {
            return Err(InvalidInput::Rule {
                field: "deadline",
                rule: "at most 240 s: identical signed bytes must arrive within WeChat Pay's 5-minute window",
            });
        }
        Ok(self.policy)
    }
}

/// What a revoke attempt's result says, in the model's terms (WeChat Pay's protocol
/// parameter): a verified 204 is [`Heard::Done`]; a refusal the revoke page documents is
/// [`Heard::Refused`]; 5xx, timeouts and lost connections are [`Heard::Unknown`] (resend the
/// identical bytes); a connection never made is [`Heard::NotDelivered`]; `SYSTEM_ERROR`, an
/// unknown code or status, and a 2xx that is not a verified 204 are [`Heard::QueryFirst`].
pub(crate) fn heard_of_revoke(result: &Result<ReverseOutcome, ReverseError>) -> Heard {
    match result {
        Ok(ReverseOutcome::Revoked(_)) => Heard::Done,
        Ok(_) => Heard::QueryFirst,
        #[cfg(feature = "transport")]
        Err(ReverseError::Transport(e)) => {
            Heard::without_answer(kicc_transport::driver::never_delivered(e))
        }
        Err(ReverseError::Recorded { heard, .. }) => *heard,
        Err(e) => match e.next_step() {
            NextStep::NotRevoked => Heard::Refused,
            NextStep::QueryOrder => Heard::QueryFirst,
            NextStep::Retry => Heard::Unknown,
        },
    }
}

/// What an order query proves about a revoke whose outcome was unknown: `REVOKED` and
/// `CLOSED` are done; `SUCCESS`, `USERPAYING` and `NOTPAY` mean not revoked, revoke again
/// (with a fresh signature); `REFUND` means not revoked and not revocable; `PAYERROR`, an
/// unknown state or a failed query leave it unknown (a failed query is never a revoke
/// outcome).
pub(crate) fn settlement_of_query(query: Result<&TradeState, &QueryError>) -> Settlement {
    match query {
        Err(_) => Settlement::Unknown,
        Ok(TradeState::Revoked | TradeState::Closed) => Settlement::Done,
        Ok(TradeState::Success | TradeState::UserPaying | TradeState::NotPay) => {
            Settlement::SendAgain
        }
        Ok(TradeState::Refund) => Settlement::NotDone,
        Ok(TradeState::PayError | TradeState::Unknown(_)) => Settlement::Unknown,
    }
}

/// How an answer to a request that changes nothing (an order query, the certificates
/// download) reads: any 2xx ends the retries (it is read afterwards); 5xx, 408 and 429 are
/// [`Heard::Unknown`] (resend the identical bytes); other statuses are final
/// ([`Heard::Refused`]).
#[cfg(any(feature = "transport", test))]
pub(crate) fn heard_of_answer(status: u16) -> Heard {
    match status {
        200..=299 => Heard::Done,
        408 | 429 | 500..=599 => Heard::Unknown,
        _ => Heard::Refused,
    }
}

/// Whether the next attempt moves to the backup host (once there, it stays): after a
/// connection that was never made, a lost one, or a 5xx; not after a timeout (the host
/// answered slowly, not wrongly). `status` is the answer's HTTP status, `None` without one;
/// `timed_out` says whether no answer came in time.
#[cfg(any(feature = "transport", test))]
pub(crate) fn switches_host(status: Option<u16>, timed_out: bool) -> bool {
    match status {
        Some(s) => (500..=599).contains(&s),
        None => !timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reverse::{ApiError, ApiErrorCode, MaybeRevokedReason};
    use crate::verify::VerifyError;

    #[test]
    fn revoke_answers_in_the_models_terms() {
        let api = |status, code| {
            Err(ReverseError::Api(Box::new(ApiError {
                status,
                code,
                message: String::new(),
                detail: None,
                request_id: None,
            })))
        };
        let table: Vec<(Result<ReverseOutcome, ReverseError>, Heard)> = vec![
            (api(500, ApiErrorCode::SystemError), Heard::QueryFirst),
            (api(400, ApiErrorCode::SystemError), Heard::QueryFirst),
            (api(503, ApiErrorCode::Other("X".into())), Heard::Unknown),
            (
                Err(ReverseError::UnexpectedResponse {
                    status: 502,
                    body_excerpt: String::new(),
                }),
                Heard::Unknown,
            ),
            (
                Err(ReverseError::UnexpectedResponse {
                    status: 302,
                    body_excerpt: String::new(),
                }),
                Heard::QueryFirst,
            ),
            (
                Ok(ReverseOutcome::MaybeRevoked {
                    status: 204,
                    reason: MaybeRevokedReason::Unverified(VerifyError::SignatureProbe),
                }),
                Heard::QueryFirst,
            ),
            (api(403, ApiErrorCode::ReverseExpire), Heard::Refused),
            (api(400, ApiErrorCode::ParamError), Heard::Refused),
            (api(401, ApiErrorCode::SignError), Heard::Refused),
            (
                api(400, ApiErrorCode::Other("NEW".into())),
                Heard::QueryFirst,
            ),
            (
                Err(ReverseError::Recorded {
                    attempts: 1,
                    heard: Heard::Nothing,
                }),
                Heard::Nothing,
            ),
        ];
        for (result, expected) in table {
            assert_eq!(heard_of_revoke(&result), expected, "{result:?}");
        }
    }

    /// The one mapping of an attempt without an answer, as KICC's driver uses it: a
    /// connection never made or refused by the client is not delivered (resend); a timeout
    /// or a connection lost after writing may have been processed (resend, then query).
    #[cfg(feature = "transport")]
    #[test]
    fn transport_failures_in_the_models_terms() {
        use kicc_transport::TransportError as T;
        let table: Vec<(T, Heard, NextStep)> = vec![
            (
                T::Connect("refused".into()),
                Heard::NotDelivered,
                NextStep::Retry,
            ),
            (
                T::Refused("plain http".into()),
                Heard::NotDelivered,
                NextStep::Retry,
            ),
            (
                T::Timeout(Duration::from_secs(30)),
                Heard::Unknown,
                NextStep::QueryOrder,
            ),
            (T::Io("reset".into()), Heard::Unknown, NextStep::QueryOrder),
        ];
        for (error, heard, step) in table {
            let result = Err(ReverseError::Transport(error.clone()));
            assert_eq!(heard_of_revoke(&result), heard, "{error:?}");
            assert_eq!(
                heard == Heard::NotDelivered,
                kicc_transport::driver::never_delivered(&error),
                "the same mapping as KICC's driver: {error:?}"
            );
            assert_eq!(ReverseError::Transport(error).next_step(), step);
        }
    }

    #[test]
    fn trade_states_in_the_models_terms() {
        use TradeState as S;
        let failed = QueryError::Malformed {
            status: 200,
            reason: "x",
        };
        let unknown = S::Unknown("ACCEPT".into());
        let table: Vec<(Result<&S, &QueryError>, Settlement)> = vec![
            (Ok(&S::Revoked), Settlement::Done),
            (Ok(&S::Closed), Settlement::Done),
            (Ok(&S::Success), Settlement::SendAgain),
            (Ok(&S::UserPaying), Settlement::SendAgain),
            (Ok(&S::NotPay), Settlement::SendAgain),
            (Ok(&S::Refund), Settlement::NotDone),
            (Ok(&S::PayError), Settlement::Unknown),
            (Ok(&unknown), Settlement::Unknown),
            (Err(&failed), Settlement::Unknown),
        ];
        for (query, expected) in table {
            assert_eq!(settlement_of_query(query), expected, "{query:?}");
        }
    }

    #[test]
    fn answers_hosts_and_policy() {
        assert_eq!(heard_of_answer(200), Heard::Done);
        assert_eq!(heard_of_answer(503), Heard::Unknown);
        assert_eq!(heard_of_answer(429), Heard::Unknown);
        assert_eq!(heard_of_answer(404), Heard::Refused);
        assert!(switches_host(Some(502), false));
        assert!(!switches_host(Some(400), false));
        assert!(switches_host(None, false));
        assert!(!switches_host(None, true));
        assert!(RetryPolicy::builder()
            .deadline(Duration::from_secs(241))
            .build()
            .is_err());
        let p = RetryPolicy::builder().max_revokes(0).build().unwrap();
        assert_eq!(p.max_revokes(), 1);
        assert_eq!(p.bounds().deadline(), Duration::from_secs(60));
    }
}
