//! One revoke settled to its end, as a sans-IO state machine: kicc-rs's one retry model
//! (`kicc_core::retry::Resender`) with WeChat Pay's protocol parameters (see the `retry`
//! module's functions).

use std::time::{Duration, Instant, SystemTime};

use kicc_core::retry::{AttemptRecord, Heard, Now, ResendStep, Resender, Verdict};
use kicc_core::Rng;

use crate::ids::InvalidInput;
use crate::query::{QueriedOrder, QueryError, TradeState};
use crate::retry::{heard_of_revoke, settlement_of_query, RetryPolicy};
use crate::reverse::{ReverseError, ReverseOutcome, SignedRequest};
use crate::settle::Resolution;

/// A stored signature older than this is not resent after a restart: a request that was
/// never delivered is signed anew instead (WeChat Pay refuses timestamps 5 minutes off).
pub const MAX_RESEND_AGE: Duration = Duration::from_secs(240);

/// The next thing to do for a [`Revocation`].
#[derive(Debug)]
#[non_exhaustive]
pub enum RevokeStep<'a> {
    /// Sign the revoke now (a new timestamp and nonce; the timing checks apply), then give
    /// it with [`Revocation::signed`] (or [`Revocation::signing_failed`]) and poll again.
    Sign,
    /// Send these exact bytes (store them and [`Revocation::records`] durably first, if you
    /// journal), then report with [`Revocation::on_revoke`].
    Send(&'a SignedRequest),
    /// Query the order, then report with [`Revocation::on_query`].
    Query,
    /// Nothing to do before this instant.
    WaitUntil(Instant),
    /// Finished (every later poll gives the same resolution).
    Done(Resolution),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Revoke,
    Query,
}

/// One revoke, from the first signature to its [`Resolution`], without I/O.
///
/// Poll it with the time ([`Revocation::poll`]); it says what to do ([`RevokeStep`]): sign,
/// send the identical signed bytes again, query the order, wait. Report each result back.
/// It follows kicc-rs's one retry model with WeChat Pay's parameters:
///
/// - 5xx, timeouts, lost connections: the identical signed bytes again, within the
///   [`RetryPolicy`]'s attempts and deadline; then the order query;
/// - a connection never made: resent (nothing can have happened);
/// - `SYSTEM_ERROR`, an unknown code, a 2xx that is not a verified 204: the order query at
///   once, never a resend;
/// - a documented refusal: not revoked, unless an earlier attempt may have been processed
///   (then the order query decides: never "not revoked" without it);
/// - the query's `trade_state`: `REVOKED`/`CLOSED` done; `SUCCESS`/`USERPAYING`/`NOTPAY`
///   revoke again with a fresh signature (up to [`RetryPolicy::max_revokes`]), then not
///   revoked; `REFUND` refund instead; `PAYERROR`, unknown, or a failed query: unknown.
///
/// [`Revocation::resume`] continues after a restart from the recorded attempts
/// ([`Revocation::records`]) and, optionally, the stored signed request.
///
/// ```
/// use std::time::{Duration, Instant, UNIX_EPOCH};
/// use wechatpay_direct::{
///     interpret_reverse_response, Heard, MerchantMode, Nonce, Now, OrderRef, RetryPolicy,
///     ReverseRequest, Revocation, RevokeStep, Rng, RsaPrivateKey, SerialNo, Timestamp,
///     VerificationKeys,
/// };
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pem = include_str!("../tests/fixtures/key-2048.pem");
/// let now = Now::new(Instant::now(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let mut revocation = Revocation::new(&RetryPolicy::default(), Rng::from_seed([7; 32]));
/// assert!(matches!(revocation.poll(now), RevokeStep::Sign));
/// let signed = ReverseRequest::new(
///     OrderRef::out_trade_no("ORDER-1")?,
///     MerchantMode::common("1900000109")?,
/// )
/// .sign(
///     &SerialNo::new("5B2FA0C1D2E3F40516273849ABCDEF0123456789")?,
///     &RsaPrivateKey::from_pem(pem)?,
///     Timestamp::from_unix_secs(1_700_000_000)?,
///     &Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS")?,
/// )?;
/// revocation.signed(signed);
/// assert!(matches!(revocation.poll(now), RevokeStep::Send(_)));
/// // Journal `revocation.records()` here: the attempt in flight has heard nothing yet.
/// assert_eq!(revocation.records()[0].heard(), Heard::Nothing);
///
/// // WeChat Pay answers SYSTEM_ERROR: the order query comes next, not a resend.
/// let answer = interpret_reverse_response(
///     http::StatusCode::INTERNAL_SERVER_ERROR,
///     &http::HeaderMap::new(),
///     br#"{"code":"SYSTEM_ERROR","message":"busy"}"#,
///     Timestamp::from_unix_secs(1_700_000_001)?,
///     &VerificationKeys::new(),
/// );
/// revocation.on_revoke(answer, now);
/// assert!(matches!(revocation.poll(now), RevokeStep::Query));
/// assert!(revocation.may_have_been_processed());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Revocation {
    machine: Resender,
    signed: Option<SignedRequest>,
    must_sign: bool,
    sending: bool,
    querying: bool,
    last: Last,
    last_revoke: Option<Result<ReverseOutcome, ReverseError>>,
    last_query: Option<Result<QueriedOrder, QueryError>>,
}

impl Revocation {
    /// A revoke under `policy`; `rng` gives the backoff jitter (seed it from the OS).
    pub fn new(policy: &RetryPolicy, rng: Rng) -> Self {
        Revocation {
            machine: Resender::new(*policy.bounds(), rng).with_query(policy.max_revokes()),
            signed: None,
            must_sign: false,
            sending: false,
            querying: false,
            last: Last::Nothing,
            last_revoke: None,
            last_query: None,
        }
    }

    /// Continues a revoke after a restart from its recorded attempts (oldest first) and the
    /// last signed request, if stored.
    ///
    /// - Any attempt that may have been processed (sent and nothing heard, a timeout, a 5xx,
    ///   `SYSTEM_ERROR`, even a recorded 204, whose verified answer the journal does not
    ///   keep): the order is queried first and decides;
    ///   nothing is resent before, and "not revoked" only follows from the query.
    /// - Only attempts never delivered: the stored bytes are sent again if signed less than
    ///   [`MAX_RESEND_AGE`] ago, else the revoke is signed anew (the same revoke: nothing
    ///   of it reached WeChat Pay).
    /// - A recorded refusal and nothing that may have been processed: not revoked.
    pub fn resume(
        policy: &RetryPolicy,
        rng: Rng,
        signed: Option<SignedRequest>,
        records: Vec<AttemptRecord>,
    ) -> Self {
        let mut revocation = Revocation::new(policy, rng);
        revocation.machine = revocation.machine.resume(records);
        revocation.signed = signed;
        revocation
    }

    /// Every attempt so far, resumed ones included: what a journal stores (with
    /// [`Revocation::signed_request`]) to [`Revocation::resume`] from.
    pub fn records(&self) -> &[AttemptRecord] {
        self.machine.records()
    }

    /// The current signed request, once signed.
    pub fn signed_request(&self) -> Option<&SignedRequest> {
        self.signed.as_ref()
    }

    /// Whether a revoke attempt may have been processed and no order query since has said
    /// otherwise.
    pub fn may_have_been_processed(&self) -> bool {
        self.machine.may_have_been_processed()
    }

    /// Revoke attempts made in this run.
    pub fn attempts(&self) -> u32 {
        self.machine.attempts()
    }

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Now) -> RevokeStep<'_> {
        if self.must_sign {
            return RevokeStep::Sign;
        }
        if self.sending {
            return match &self.signed {
                Some(signed) => RevokeStep::Send(signed),
                None => RevokeStep::Sign,
            };
        }
        match self.machine.poll(now) {
            ResendStep::Send { fresh, .. } => {
                // A request never delivered may be signed anew (it is the same revoke);
                // one that may have been processed is only resent identically.
                let stale = self.signed.as_ref().is_none_or(|s| too_old(s, now.wall));
                if fresh
                    || self.signed.is_none()
                    || (stale && !self.machine.may_have_been_processed())
                {
                    self.must_sign = true;
                    return RevokeStep::Sign;
                }
                self.sending = true;
                match &self.signed {
                    Some(signed) => RevokeStep::Send(signed),
                    None => RevokeStep::Sign,
                }
            }
            // A query in flight and polled again: ask for it again.
            ResendStep::AwaitAnswer | ResendStep::Query => {
                self.querying = true;
                RevokeStep::Query
            }
            ResendStep::WaitUntil(t) => RevokeStep::WaitUntil(t),
            ResendStep::Finished(verdict) => RevokeStep::Done(self.resolution(verdict)),
            // `ResendStep` may grow; anything new is treated as the outcome being unknown.
            _ => RevokeStep::Done(self.resolution(Verdict::Unknown)),
        }
    }

    /// The signed revoke asked for by [`RevokeStep::Sign`].
    pub fn signed(&mut self, signed: SignedRequest) {
        if self.must_sign {
            self.must_sign = false;
            self.sending = true;
            self.signed = Some(signed);
        }
    }

    /// Signing failed (a timing rule, the clock, randomness): nothing was sent, and the
    /// attempt counts as refused by the client.
    pub fn signing_failed(&mut self, error: ReverseError, now: Now) {
        if self.must_sign {
            self.must_sign = false;
            self.sending = true;
            self.on_revoke(Err(error), now);
        }
    }

    /// What the revoke attempt in flight produced (the interpreted answer, or the transport
    /// failure as [`ReverseError::Transport`]).
    pub fn on_revoke(&mut self, result: Result<ReverseOutcome, ReverseError>, now: Now) {
        if !self.sending {
            return;
        }
        self.sending = false;
        self.machine.on_attempt(heard_of_revoke(&result), now);
        self.last = Last::Revoke;
        self.last_revoke = Some(result);
    }

    /// What the order query asked for by [`RevokeStep::Query`] answered. Ignored unless a
    /// query was asked for.
    pub fn on_query(&mut self, result: Result<QueriedOrder, QueryError>) {
        if !self.querying {
            return;
        }
        self.querying = false;
        self.machine
            .on_query(settlement_of_query(result.as_ref().map(|o| &o.trade_state)));
        self.last = Last::Query;
        self.last_query = Some(result);
    }

    /// The last revoke result, or what the journal says of the last attempt.
    fn last_revoke(&self) -> Result<ReverseOutcome, ReverseError> {
        match &self.last_revoke {
            Some(r) => r.clone(),
            None => Err(ReverseError::Recorded {
                attempts: u32::try_from(self.records().len()).unwrap_or(u32::MAX),
                heard: self
                    .records()
                    .last()
                    .map_or(Heard::NotDelivered, AttemptRecord::heard),
            }),
        }
    }

    fn resolution(&self, verdict: Verdict) -> Resolution {
        let order = match (&self.last, &self.last_query) {
            (Last::Query, Some(q)) => Some(q.clone()),
            _ => None,
        };
        match (verdict, order) {
            (Verdict::Done, Some(Ok(o))) if o.trade_state == TradeState::Closed => {
                Resolution::Closed(o)
            }
            (Verdict::Done, Some(Ok(o))) => Resolution::RevokedPerQuery(o),
            (Verdict::NotProcessed, Some(Ok(o))) if o.trade_state == TradeState::Refund => {
                Resolution::RefundInstead(o)
            }
            (Verdict::NotProcessed, Some(Ok(o))) => Resolution::StillNotRevoked(o),
            (_, Some(Ok(o))) => Resolution::UnknownState(o),
            (_, Some(Err(query))) => Resolution::QueryFailed {
                last_revoke: Box::new(self.last_revoke()),
                query,
            },
            (Verdict::Done, None) => match self.last_revoke() {
                Ok(ReverseOutcome::Revoked(v)) => Resolution::Revoked(v),
                other => self.unresolved(other),
            },
            (Verdict::NotProcessed, None) => match self.last_revoke() {
                // Every attempt failed before reaching WeChat Pay.
                Err(last) if heard_of_revoke(&Err(last.clone())) == Heard::NotDelivered => {
                    Resolution::NotRevoked(ReverseError::RetriesExhausted {
                        attempts: self.attempts(),
                        may_have_reached_server: false,
                        last: Box::new(last),
                    })
                }
                Err(e) => Resolution::NotRevoked(e),
                other => self.unresolved(other),
            },
            (_, None) => self.unresolved(self.last_revoke()),
        }
    }

    /// A state the machine does not produce (every unknown outcome goes through the order
    /// query); reported as unknown, never as a result.
    fn unresolved(&self, last: Result<ReverseOutcome, ReverseError>) -> Resolution {
        Resolution::QueryFailed {
            last_revoke: Box::new(last),
            query: QueryError::Invalid(InvalidInput::Rule {
                field: "order query",
                rule: "the revoke's outcome is unknown and no order query answered",
            }),
        }
    }
}

fn too_old(signed: &SignedRequest, now: SystemTime) -> bool {
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(signed.timestamp().unix_secs());
    now.duration_since(signed_at)
        .is_ok_and(|age| age >= MAX_RESEND_AGE)
}
