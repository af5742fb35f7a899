//! The ledger's rules as pure functions (sans-IO): every store reads the rows, calls one of
//! these with the database's `now`, and writes back what it returns, in one transaction.
//! Nothing here reads a clock, a file or a socket, so the rules are tested with a virtual
//! clock.
//!
//! The rules:
//! - the same `intent_id` with identical parameters is the same intent; with different
//!   parameters (channel, pg_cno, code, amount, currency, remain amount) it is a
//!   [`TransitionError::Conflict`], checked before "already final";
//! - final states (succeeded, declined, not_processed) never change again;
//! - only a lease holder writes, and only while its generation is the intent's (fencing);
//! - an intent is leased only when no earlier non-final intent exists on its `pg_cno`;
//! - an attempt is recorded (key, date, exact bytes) before it is sent, and only once the
//!   previous attempt's result is recorded; Alipay/WeChat resends repeat the first message
//!   exactly; a generic resend uses a new key, or repeats a key only when every earlier
//!   attempt with it has a recorded result of "not delivered" (the connection was never
//!   made, so the gateway never saw that key; an attempt with no recorded result may have
//!   been processed);
//! - an intent that may have been processed becomes `not_processed` only with proof that
//!   every such key was looked up and found absent, and is never `declined` by a later
//!   refusal (DESIGN.md invariant 8).

use std::time::Duration;

use crate::error::{Conflict, TransitionError};
use crate::model::{
    duration_ms, Attempt, AttemptPlan, AttemptResult, Channel, Finish, Intent, IntentSpec, Lease,
    NotProcessedProof, OutcomeKind, OwnerId, State, Timestamp,
};

fn rule(intent: &Intent, text: impl Into<String>) -> TransitionError {
    TransitionError::Rule {
        intent_id: intent.spec.intent_id().clone(),
        rule: text.into(),
    }
}

/// Whether `spec` is the same cancel as `existing` (a [`TransitionError::Conflict`] naming
/// every differing field if not).
pub fn check_same(existing: &IntentSpec, spec: &IntentSpec) -> Result<(), TransitionError> {
    let differences: Vec<_> = existing
        .identity()
        .into_iter()
        .zip(spec.identity())
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| (field, a, b))
        .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(TransitionError::Conflict(Conflict {
            intent_id: existing.intent_id().clone(),
            differences,
        }))
    }
}

/// What planning an intent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// A new intent, to be inserted.
    Created(Intent),
    /// The same intent already exists (in any state, final ones included): nothing new is
    /// to be sent for it beyond what its state calls for.
    Existing(Intent),
}

/// Plans `spec` given the stored intent with the same id, if any; `seq` is the import order
/// a new intent gets.
pub fn plan(
    existing: Option<&Intent>,
    spec: IntentSpec,
    seq: i64,
) -> Result<Planned, TransitionError> {
    match existing {
        Some(e) => {
            check_same(&e.spec, &spec)?;
            Ok(Planned::Existing(e.clone()))
        }
        None => Ok(Planned::Created(Intent::planned(seq, spec))),
    }
}

/// Whether a recovery should look at `intent` now: in flight with an expired lease or a dead
/// owner, or unknown.
pub fn is_recoverable(intent: &Intent, now: Timestamp, owner_alive: bool) -> bool {
    match &intent.state {
        State::InFlight { expires_at, .. } => now >= *expires_at || !owner_alive,
        State::Unknown => true,
        _ => false,
    }
}

/// Leases `intent` to `owner` for `ttl` from `now` (database clock).
///
/// Allowed from planned, unknown and pending, and from in flight when the lease expired or
/// its owner is dead (`holder_alive` is false: the owner's lock is free). `earlier_open` is
/// the earliest non-final intent on the same `pg_cno` imported before this one, if any.
pub fn acquire(
    intent: &Intent,
    owner: &OwnerId,
    now: Timestamp,
    ttl: Duration,
    earlier_open: Option<&Intent>,
    holder_alive: bool,
) -> Result<(Intent, Lease), TransitionError> {
    let kind = intent.state.kind();
    if kind.is_final() {
        return Err(TransitionError::AlreadyFinal {
            intent_id: intent.spec.intent_id().clone(),
            state: kind,
        });
    }
    if let State::InFlight {
        owner: holder,
        expires_at,
        ..
    } = &intent.state
    {
        if now < *expires_at && holder_alive {
            return Err(TransitionError::Busy {
                intent_id: intent.spec.intent_id().clone(),
                owner: holder.to_string(),
            });
        }
    }
    if let Some(e) = earlier_open {
        if e.seq < intent.seq && !e.state.kind().is_final() {
            return Err(TransitionError::Blocked {
                intent_id: intent.spec.intent_id().clone(),
                earlier: e.spec.intent_id().clone(),
            });
        }
    }
    if ttl.is_zero() {
        return Err(rule(intent, "a lease needs a positive TTL"));
    }
    let generation = intent.generation + 1;
    let expires_at = now.plus(ttl);
    let mut next = intent.clone();
    next.generation = generation;
    next.state = State::InFlight {
        owner: owner.clone(),
        generation,
        expires_at,
    };
    let lease = Lease {
        intent_id: intent.spec.intent_id().clone(),
        owner: owner.clone(),
        generation,
        expires_at,
        ttl,
    };
    Ok((next, lease))
}

/// Checks that `lease` is the intent's current lease (fencing); with `unexpired`, also that
/// it has not expired at `now`.
pub fn check_lease(
    intent: &Intent,
    lease: &Lease,
    now: Timestamp,
    unexpired: bool,
) -> Result<(), TransitionError> {
    let held = matches!(
        &intent.state,
        State::InFlight { owner, generation, .. }
            if *owner == lease.owner && *generation == lease.generation
    );
    if !held || intent.generation != lease.generation {
        return Err(TransitionError::Fenced {
            intent_id: intent.spec.intent_id().clone(),
            generation: lease.generation,
            current: intent.generation,
        });
    }
    if let State::InFlight { expires_at, .. } = &intent.state {
        if unexpired && now >= *expires_at {
            return Err(TransitionError::LeaseExpired {
                intent_id: intent.spec.intent_id().clone(),
            });
        }
    }
    Ok(())
}

/// Renews `lease` to `now + lease.ttl`. Refused when taken over, or when even a fresh lease
/// leaves less than `min_remaining` (the attempt's timeout plus a margin).
pub fn renew(
    intent: &Intent,
    lease: &Lease,
    now: Timestamp,
    min_remaining: Duration,
) -> Result<(Intent, Lease), TransitionError> {
    check_lease(intent, lease, now, false)?;
    if lease.ttl < min_remaining {
        return Err(TransitionError::LeaseTooShort {
            intent_id: intent.spec.intent_id().clone(),
            remaining_ms: duration_ms(lease.ttl).unsigned_abs(),
            needed_ms: duration_ms(min_remaining).unsigned_abs(),
        });
    }
    let expires_at = now.plus(lease.ttl);
    let mut next = intent.clone();
    next.state = State::InFlight {
        owner: lease.owner.clone(),
        generation: lease.generation,
        expires_at,
    };
    let mut lease = lease.clone();
    lease.expires_at = expires_at;
    Ok((next, lease))
}

/// Records an attempt before it is sent. Refused when the lease is not held or expired, the
/// previous attempt has no result yet, or the resend rule of the channel is broken:
/// Alipay/WeChat resends repeat the first message exactly; a generic attempt may reuse a
/// key only when every earlier attempt with that key was recorded as
/// [`OutcomeKind::NotDelivered`] (its Korea date and bytes may differ, e.g. a date
/// refreshed across Korea midnight, and are journaled as sent).
pub fn record_attempt(
    intent: &Intent,
    lease: &Lease,
    now: Timestamp,
    plan: AttemptPlan,
) -> Result<(Intent, Attempt), TransitionError> {
    check_lease(intent, lease, now, true)?;
    plan.validate()?;
    if let Some(last) = intent.attempts.last() {
        if last.result.is_none() {
            return Err(rule(
                intent,
                format!(
                    "attempt {} has no recorded result: record it before the next attempt",
                    last.number
                ),
            ));
        }
    }
    if intent.spec.channel().resends_identically() {
        if let Some(first) = intent.attempts.first() {
            if first.key != plan.key
                || first.korea_date != plan.korea_date
                || first.request != plan.request
            {
                return Err(rule(
                    intent,
                    "an alipay/wechat resend must repeat the first message exactly (same key, date and bytes)",
                ));
            }
        }
    } else if let Some(used) = intent
        .attempts
        .iter()
        .find(|a| a.key == plan.key && !a.never_delivered())
    {
        return Err(rule(
            intent,
            format!(
                "key {:?} was already used (attempt {} may have reached the gateway): a generic resend needs a new key",
                plan.key, used.number
            ),
        ));
    }
    let attempt = Attempt {
        number: u32::try_from(intent.attempts.len() + 1).unwrap_or(u32::MAX),
        key: plan.key,
        korea_date: plan.korea_date,
        request: plan.request,
        sent_at: now,
        result: None,
    };
    let mut next = intent.clone();
    next.attempts.push(attempt.clone());
    Ok((next, attempt))
}

/// What [`start`] did: the lease, the intent as it now stands and, when the builder made
/// one, the first attempt, recorded with the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Started {
    /// The intent, in flight under `lease`, with `attempt` (if any) as its last attempt.
    pub intent: Intent,
    /// The lease: pass it to every later write.
    pub lease: Lease,
    /// The attempt recorded with the lease (`None` when `build` made no message).
    pub attempt: Option<Attempt>,
}

/// [`acquire`] and then [`record_attempt`] of the message `build` makes for the leased
/// intent, as one step (one transaction, one commit): the message is still built when its
/// attempt is leased (a batch may cross Korea midnight), and its key, date and exact bytes
/// are recorded, with the intent in flight, before its first byte.
///
/// The attempt needs at least `min_remaining` (its timeout plus a margin) of the fresh
/// lease: a `ttl` below it is [`TransitionError::LeaseTooShort`]. `build` returns `None`
/// when no message can be built: then only the lease is taken.
#[allow(clippy::too_many_arguments)]
pub fn start(
    intent: &Intent,
    owner: &OwnerId,
    now: Timestamp,
    ttl: Duration,
    min_remaining: Duration,
    earlier_open: Option<&Intent>,
    holder_alive: bool,
    build: impl FnOnce(&Intent) -> Option<AttemptPlan>,
) -> Result<Started, TransitionError> {
    if ttl < min_remaining {
        return Err(TransitionError::LeaseTooShort {
            intent_id: intent.spec.intent_id().clone(),
            remaining_ms: duration_ms(ttl).unsigned_abs(),
            needed_ms: duration_ms(min_remaining).unsigned_abs(),
        });
    }
    let (leased, lease) = acquire(intent, owner, now, ttl, earlier_open, holder_alive)?;
    match build(&leased) {
        None => Ok(Started {
            intent: leased,
            lease,
            attempt: None,
        }),
        Some(plan) => {
            let (next, attempt) = record_attempt(&leased, &lease, now, plan)?;
            Ok(Started {
                intent: next,
                lease,
                attempt: Some(attempt),
            })
        }
    }
}

/// Records the result of attempt `number` (once).
pub fn record_result(
    intent: &Intent,
    lease: &Lease,
    now: Timestamp,
    number: u32,
    result: AttemptResult,
) -> Result<Intent, TransitionError> {
    check_lease(intent, lease, now, false)?;
    if result.outcome == OutcomeKind::Pending && intent.spec.channel() != Channel::Wechat {
        return Err(rule(intent, "only wechat cancels can be pending"));
    }
    let mut next = intent.clone();
    let attempt = next
        .attempts
        .iter_mut()
        .find(|a| a.number == number)
        .ok_or_else(|| rule(intent, format!("there is no attempt {number}")))?;
    if attempt.result.is_some() {
        return Err(rule(
            intent,
            format!("attempt {number} already has a result"),
        ));
    }
    if let Some(code) = &result.res_cd {
        next.res_cd = Some(code.clone());
    }
    if let Some(a) = next.attempts.iter_mut().find(|a| a.number == number) {
        a.result = Some(result);
    }
    Ok(next)
}

/// Ends (or parks) a leased intent. See [`Finish`] for what each outcome needs.
pub fn finish(
    intent: &Intent,
    lease: &Lease,
    now: Timestamp,
    outcome: Finish,
) -> Result<Intent, TransitionError> {
    check_lease(intent, lease, now, false)?;
    let unrecorded = intent.attempts.iter().find(|a| a.result.is_none());
    let needs_results = |what: &str| match unrecorded {
        Some(a) => Err(rule(
            intent,
            format!(
                "attempt {} has no recorded result: record it before marking the intent {what}",
                a.number
            ),
        )),
        None => Ok(()),
    };
    let mut next = intent.clone();
    match outcome {
        Finish::Succeeded { cancel_pg_cno } => {
            if intent.attempts.is_empty() {
                return Err(rule(intent, "nothing was sent: it cannot have succeeded"));
            }
            needs_results("succeeded")?;
            if cancel_pg_cno.is_empty() {
                return Err(rule(intent, "a success needs its cancelPgCno"));
            }
            next.cancel_pg_cno = Some(cancel_pg_cno.clone());
            next.state = State::Succeeded { cancel_pg_cno };
        }
        Finish::Declined { res_cd, detail } => {
            if intent.attempts.is_empty() {
                return Err(rule(
                    intent,
                    "nothing was sent: it cannot have been declined",
                ));
            }
            needs_results("declined")?;
            let accepted = intent.spec.channel() == Channel::Wechat
                && intent.cancel_pg_cno.is_some()
                && intent
                    .attempts
                    .iter()
                    .any(|a| a.result.as_ref().map(|r| r.outcome) == Some(OutcomeKind::Pending));
            let last = intent.attempts.len() - 1;
            let earlier_maybe = intent.attempts[..last]
                .iter()
                .any(Attempt::may_have_been_processed);
            let last_declined = intent.attempts[last].result.as_ref().map(|r| r.outcome)
                == Some(OutcomeKind::Declined);
            if !accepted && (earlier_maybe || !last_declined) {
                return Err(rule(
                    intent,
                    "an attempt may have been processed: a refusal cannot make it declined (look up or query instead)",
                ));
            }
            next.res_cd = Some(res_cd.clone());
            next.detail = Some(detail);
            next.state = State::Declined { res_cd };
        }
        Finish::NotProcessed(proof) => {
            needs_results("not processed")?;
            let risky: Vec<&Attempt> = intent
                .attempts
                .iter()
                .filter(|a| a.may_have_been_processed())
                .collect();
            match proof {
                NotProcessedProof::NothingDelivered => {
                    if let Some(a) = risky.first() {
                        return Err(rule(
                            intent,
                            format!(
                                "attempt {} (key {:?}) may have been processed: look its key up first",
                                a.number, a.key
                            ),
                        ));
                    }
                }
                NotProcessedProof::KeysAbsent { keys } => {
                    if let Some(a) = risky.iter().find(|a| !keys.contains(&a.key)) {
                        return Err(rule(
                            intent,
                            format!(
                                "key {:?} of attempt {} was not looked up: every key that may have been processed must be",
                                a.key, a.number
                            ),
                        ));
                    }
                }
            }
            next.state = State::NotProcessed;
        }
        Finish::Unknown { detail } => {
            next.detail = Some(detail);
            next.state = State::Unknown;
        }
        Finish::Pending { cancel_pg_cno } => {
            if intent.spec.channel() != Channel::Wechat {
                return Err(rule(intent, "only wechat cancels can be pending"));
            }
            needs_results("pending")?;
            let accepted = intent
                .attempts
                .iter()
                .any(|a| a.result.as_ref().map(|r| r.outcome) == Some(OutcomeKind::Pending));
            if !accepted {
                return Err(rule(intent, "no attempt was accepted as pending"));
            }
            if cancel_pg_cno.is_empty() {
                return Err(rule(intent, "a pending cancel needs its cancelPgCno"));
            }
            next.cancel_pg_cno = Some(cancel_pg_cno.clone());
            next.state = State::Pending { cancel_pg_cno };
        }
    }
    Ok(next)
}

/// Gives a lease back without an outcome (e.g. on Ctrl-C): an intent with no attempt goes
/// back to planned, an accepted WeChat cancel back to pending, anything else becomes unknown
/// (something may have been sent).
pub fn release(intent: &Intent, lease: &Lease, now: Timestamp) -> Result<Intent, TransitionError> {
    check_lease(intent, lease, now, false)?;
    let mut next = intent.clone();
    let accepted = intent
        .attempts
        .iter()
        .any(|a| a.result.as_ref().map(|r| r.outcome) == Some(OutcomeKind::Pending));
    next.state = match (&intent.cancel_pg_cno, accepted) {
        _ if intent.attempts.is_empty() => State::Planned,
        (Some(c), true) if intent.spec.channel() == Channel::Wechat => State::Pending {
            cancel_pg_cno: c.clone(),
        },
        _ => {
            next.detail = Some("released with attempts recorded; outcome not settled".into());
            State::Unknown
        }
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IntentParams;
    use crate::model::StateKind;
    use crate::money::Currency;

    /// A virtual clock: milliseconds, advanced by hand.
    struct Clock(i64);
    impl Clock {
        fn now(&self) -> Timestamp {
            Timestamp(self.0)
        }
        fn advance(&mut self, d: Duration) {
            self.0 += duration_ms(d);
        }
    }

    const TTL: Duration = Duration::from_secs(60);

    fn spec(id: &str, channel: Channel, pg: &str, amount: Option<u64>) -> IntentSpec {
        let mut p = IntentParams::new(id, channel, pg);
        p.amount = amount;
        if amount.is_some() && channel != Channel::Generic {
            p.currency = Some(Currency::Usd);
        }
        p.validate().unwrap()
    }

    fn me() -> OwnerId {
        OwnerId("me".into())
    }
    fn other() -> OwnerId {
        OwnerId("other".into())
    }

    fn attempt(key: &str) -> AttemptPlan {
        AttemptPlan {
            key: key.into(),
            korea_date: "20261202".into(),
            request: format!("{{\"shopTransactionId\":\"{key}\"}}").into_bytes(),
        }
    }

    fn result(outcome: OutcomeKind) -> AttemptResult {
        AttemptResult {
            http_status: Some(200),
            res_cd: Some(
                if outcome == OutcomeKind::Succeeded {
                    "0000"
                } else {
                    "R102"
                }
                .into(),
            ),
            detail: "test".into(),
            outcome,
        }
    }

    fn leased(intent: &Intent, clock: &Clock) -> (Intent, Lease) {
        acquire(intent, &me(), clock.now(), TTL, None, true).unwrap()
    }

    #[test]
    fn same_id_same_parameters_is_the_existing_intent_even_when_final() {
        let first = spec("r-1", Channel::Alipay, "pg1", Some(1203));
        let mut stored = Intent::planned(1, first.clone());
        stored.state = State::Succeeded {
            cancel_pg_cno: "c1".into(),
        };
        // Reason and notify URL are not part of the identity.
        let mut p = IntentParams::new("r-1", Channel::Alipay, "pg1");
        p.amount = Some(1203);
        p.currency = Some(Currency::Usd);
        p.reason = Some("another reason".into());
        let again = p.validate().unwrap();
        assert_eq!(
            plan(Some(&stored), again, 9).unwrap(),
            Planned::Existing(stored.clone())
        );
        assert!(matches!(
            plan(None, first, 9).unwrap(),
            Planned::Created(i) if i.seq == 9 && i.state == State::Planned
        ));
    }

    #[test]
    fn different_parameters_conflict_before_already_final() {
        let mut stored = Intent::planned(1, spec("r-1", Channel::Alipay, "pg1", Some(1203)));
        stored.state = State::Declined {
            res_cd: "R102".into(),
        };
        let err = plan(
            Some(&stored),
            spec("r-1", Channel::Alipay, "pg1", Some(1204)),
            2,
        )
        .unwrap_err();
        let TransitionError::Conflict(c) = err else {
            panic!("expected a conflict, got {err:?}")
        };
        assert_eq!(
            c.differences,
            vec![("amount", "1203".to_owned(), "1204".to_owned())]
        );
        let err = plan(Some(&stored), spec("r-1", Channel::Wechat, "pg2", None), 2).unwrap_err();
        let TransitionError::Conflict(c) = err else {
            panic!()
        };
        let fields: Vec<_> = c.differences.iter().map(|d| d.0).collect();
        assert_eq!(fields, ["channel", "pg_cno", "type", "amount", "currency"]);
    }

    #[test]
    fn final_states_never_go_back() {
        let clock = Clock(1_000);
        for state in [
            State::Succeeded {
                cancel_pg_cno: "c".into(),
            },
            State::Declined {
                res_cd: "R1".into(),
            },
            State::NotProcessed,
        ] {
            let mut i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
            i.state = state.clone();
            let err = acquire(&i, &me(), clock.now(), TTL, None, false).unwrap_err();
            assert_eq!(
                err,
                TransitionError::AlreadyFinal {
                    intent_id: i.spec.intent_id().clone(),
                    state: state.kind()
                }
            );
        }
    }

    #[test]
    fn a_live_lease_is_busy_until_it_expires_or_its_owner_dies() {
        let mut clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (held, lease) = leased(&i, &clock);
        assert_eq!(lease.generation, 1);
        assert_eq!(lease.expires_at, Timestamp(60_000));
        assert!(matches!(
            acquire(&held, &other(), clock.now(), TTL, None, true),
            Err(TransitionError::Busy { .. })
        ));
        assert!(!is_recoverable(&held, clock.now(), true));
        // Dead owner: taken over at once, no waiting for expiry.
        assert!(is_recoverable(&held, clock.now(), false));
        let (taken, lease2) = acquire(&held, &other(), clock.now(), TTL, None, false).unwrap();
        assert_eq!(lease2.generation, 2);
        // The first holder is fenced off from every write.
        for err in [
            record_attempt(&taken, &lease, clock.now(), attempt("k1")).map(|_| ()),
            renew(&taken, &lease, clock.now(), TTL).map(|_| ()),
            finish(
                &taken,
                &lease,
                clock.now(),
                Finish::Unknown { detail: "x".into() },
            )
            .map(|_| ()),
            release(&taken, &lease, clock.now()).map(|_| ()),
        ] {
            assert_eq!(
                err.unwrap_err(),
                TransitionError::Fenced {
                    intent_id: i.spec.intent_id().clone(),
                    generation: 1,
                    current: 2
                }
            );
        }
        // Expiry by the (database) clock also frees it.
        clock.advance(TTL);
        assert!(is_recoverable(&taken, clock.now(), true));
        let (_, lease3) = acquire(&taken, &me(), clock.now(), TTL, None, true).unwrap();
        assert_eq!(lease3.generation, 3);
    }

    #[test]
    fn one_intent_at_a_time_per_pg_cno_in_file_order() {
        let clock = Clock(0);
        let first = Intent::planned(1, spec("a", Channel::Generic, "pg", Some(100)));
        let second = Intent::planned(2, spec("b", Channel::Generic, "pg", Some(100)));
        let err = acquire(&second, &me(), clock.now(), TTL, Some(&first), true).unwrap_err();
        assert_eq!(
            err,
            TransitionError::Blocked {
                intent_id: second.spec.intent_id().clone(),
                earlier: first.spec.intent_id().clone()
            }
        );
        let mut done = first.clone();
        done.state = State::NotProcessed;
        assert!(acquire(&second, &me(), clock.now(), TTL, Some(&done), true).is_ok());
    }

    #[test]
    fn attempts_need_a_live_unexpired_lease_and_the_previous_result() {
        let mut clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (i, a1) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        assert_eq!((a1.number, a1.sent_at), (1, Timestamp(0)));
        let err = record_attempt(&i, &lease, clock.now(), attempt("k2")).unwrap_err();
        assert!(
            matches!(err, TransitionError::Rule { ref rule, .. } if rule.contains("no recorded result"))
        );
        let i = record_result(&i, &lease, clock.now(), 1, result(OutcomeKind::Ambiguous)).unwrap();
        // Generic: a resend needs a new key.
        let err = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap_err();
        assert!(matches!(err, TransitionError::Rule { ref rule, .. } if rule.contains("new key")));
        clock.advance(TTL);
        assert_eq!(
            record_attempt(&i, &lease, clock.now(), attempt("k2")).unwrap_err(),
            TransitionError::LeaseExpired {
                intent_id: i.spec.intent_id().clone()
            }
        );
        // Renewal (nobody took it over) gives a full TTL again, from the clock's now.
        let (i, lease) = renew(&i, &lease, clock.now(), Duration::from_secs(35)).unwrap();
        assert_eq!(lease.expires_at, Timestamp(120_000));
        let (i, a2) = record_attempt(&i, &lease, clock.now(), attempt("k2")).unwrap();
        assert_eq!(a2.number, 2);
        assert_eq!(i.attempts.len(), 2);
        // A renewal that cannot cover the attempt's timeout plus margin is refused.
        assert!(matches!(
            renew(&i, &lease, clock.now(), Duration::from_secs(61)),
            Err(TransitionError::LeaseTooShort {
                remaining_ms: 60_000,
                needed_ms: 61_000,
                ..
            })
        ));
        // Bad attempt data is refused before anything is recorded.
        let mut bad = attempt("k3");
        bad.korea_date = "20260230".into();
        assert!(matches!(
            record_attempt(&i, &lease, clock.now(), bad),
            Err(TransitionError::Invalid(_))
        ));
    }

    #[test]
    fn wallet_resends_must_be_identical() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Alipay, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 1, result(OutcomeKind::Ambiguous)).unwrap();
        assert!(record_attempt(&i, &lease, clock.now(), attempt("k2")).is_err());
        let mut other_date = attempt("k1");
        other_date.korea_date = "20261203".into();
        assert!(record_attempt(&i, &lease, clock.now(), other_date).is_err());
        let (i, a2) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        assert_eq!(a2.request, i.attempts[0].request);
    }

    #[test]
    fn a_generic_key_is_reused_after_attempts_recorded_not_delivered() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            1,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        // The connection was never made: the gateway never saw k1, so the resend may
        // carry it again (what kicc-core's retry does).
        let (i, a2) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        assert_eq!((a2.number, a2.key.as_str()), (2, "k1"));
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            2,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        // Again: every earlier attempt with k1 was recorded not delivered.
        let (i, a3) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        assert_eq!(a3.number, 3);
        // Still provably not processed once the third is refused at the connection too.
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            3,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        assert!(i.maybe_processed_keys().is_empty());
        let done = finish(
            &i,
            &lease,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::NothingDelivered),
        )
        .unwrap();
        assert_eq!(done.state, State::NotProcessed);
    }

    #[test]
    fn a_generic_key_that_may_have_reached_the_gateway_is_never_reused() {
        let clock = Clock(0);
        // Every outcome but "not delivered" means the gateway saw (or may have seen) the
        // key: Ambiguous (unknown), Declined, Succeeded, Pending.
        for outcome in [
            OutcomeKind::Ambiguous,
            OutcomeKind::Declined,
            OutcomeKind::Succeeded,
        ] {
            let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
            let (i, lease) = leased(&i, &clock);
            let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
            let i = record_result(&i, &lease, clock.now(), 1, result(outcome)).unwrap();
            let err = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap_err();
            assert!(
                matches!(err, TransitionError::Rule { ref rule, .. } if rule.contains("new key")),
                "{outcome:?}: {err:?}"
            );
        }
        // One not-delivered attempt does not clear a key another attempt may have used:
        // k1 not delivered, k2 unknown, k1 not delivered again, then k2 is still refused.
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k2")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 1, result(OutcomeKind::Ambiguous)).unwrap();
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            2,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        assert!(record_attempt(&i, &lease, clock.now(), attempt("k2")).is_err());
        assert!(record_attempt(&i, &lease, clock.now(), attempt("k1")).is_ok());

        // An attempt journaled with no recorded result (a crash between journal and
        // answer) may have been processed: after a takeover its key is refused, even
        // though the lease is new; recovery looks it up instead.
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (crashed, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let (taken, lease2) = acquire(&crashed, &other(), clock.now(), TTL, None, false).unwrap();
        assert!(record_attempt(&taken, &lease2, clock.now(), attempt("k1")).is_err());
        assert_eq!(taken.maybe_processed_keys(), ["k1"]);
        // Recorded unknown by the new holder (what the executor does for an orphan):
        // still refused, and "not processed" needs the look-up of k1.
        let taken = record_result(
            &taken,
            &lease2,
            clock.now(),
            1,
            result(OutcomeKind::Ambiguous),
        )
        .unwrap();
        let err = record_attempt(&taken, &lease2, clock.now(), attempt("k1")).unwrap_err();
        assert!(matches!(err, TransitionError::Rule { ref rule, .. } if rule.contains("new key")));
        assert!(finish(
            &taken,
            &lease2,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::NothingDelivered)
        )
        .is_err());
    }

    #[test]
    fn a_reused_generic_key_across_korea_midnight_is_journaled_with_its_new_date_and_bytes() {
        // 2026-12-02 23:59:59 in Korea (UTC+9) is 14:59:59 UTC.
        let mut clock = Clock(1_796_223_599_000);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let before = AttemptPlan {
            key: "k1".into(),
            korea_date: "20261202".into(),
            request: br#"{"shopTransactionId":"k1","cancelReqDate":"20261202"}"#.to_vec(),
        };
        let (i, _) = record_attempt(&i, &lease, clock.now(), before.clone()).unwrap();
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            1,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        // Two seconds later it is the 3rd in Korea: the retry refreshes the date.
        clock.advance(Duration::from_secs(2));
        let after = AttemptPlan {
            key: "k1".into(),
            korea_date: "20261203".into(),
            request: br#"{"shopTransactionId":"k1","cancelReqDate":"20261203"}"#.to_vec(),
        };
        let (i, a2) = record_attempt(&i, &lease, clock.now(), after.clone()).unwrap();
        // Each attempt is journaled exactly as it was (to be) sent: key, date and bytes.
        assert_eq!(i.attempts.len(), 2);
        let first = &i.attempts[0];
        assert_eq!(
            (&first.key, &first.korea_date, &first.request),
            (&before.key, &before.korea_date, &before.request)
        );
        assert_eq!(
            (&a2.key, &a2.korea_date, &a2.request, a2.sent_at),
            (
                &after.key,
                &after.korea_date,
                &after.request,
                Timestamp(1_796_223_601_000)
            )
        );
        assert_eq!(i.attempts[1], a2);
    }

    #[test]
    fn not_processed_needs_proof_for_every_key_that_may_have_been_processed() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        // No attempt at all: certainly not processed.
        assert_eq!(
            finish(
                &i,
                &lease,
                clock.now(),
                Finish::NotProcessed(NotProcessedProof::NothingDelivered)
            )
            .unwrap()
            .state,
            State::NotProcessed
        );
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        // No result recorded yet: it may have been processed.
        assert!(finish(
            &i,
            &lease,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::KeysAbsent {
                keys: vec!["k1".into()]
            })
        )
        .is_err());
        let i = record_result(
            &i,
            &lease,
            clock.now(),
            1,
            result(OutcomeKind::NotDelivered),
        )
        .unwrap();
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k2")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 2, result(OutcomeKind::Ambiguous)).unwrap();
        assert_eq!(i.maybe_processed_keys(), ["k2"]);
        assert!(finish(
            &i,
            &lease,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::NothingDelivered)
        )
        .is_err());
        assert!(finish(
            &i,
            &lease,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::KeysAbsent {
                keys: vec!["k1".into()]
            })
        )
        .is_err());
        // A later refusal never makes a maybe-processed intent declined (invariant 8).
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k3")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 3, result(OutcomeKind::Declined)).unwrap();
        assert!(finish(
            &i,
            &lease,
            clock.now(),
            Finish::Declined {
                res_cd: "R102".into(),
                detail: "no".into()
            }
        )
        .is_err());
        let done = finish(
            &i,
            &lease,
            clock.now(),
            Finish::NotProcessed(NotProcessedProof::KeysAbsent {
                keys: vec!["k2".into()],
            }),
        )
        .unwrap();
        assert_eq!(done.state, State::NotProcessed);
    }

    #[test]
    fn declined_and_succeeded_need_recorded_attempts() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let declined = Finish::Declined {
            res_cd: "R102".into(),
            detail: "no".into(),
        };
        assert!(finish(&i, &lease, clock.now(), declined.clone()).is_err());
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 1, result(OutcomeKind::Declined)).unwrap();
        let d = finish(&i, &lease, clock.now(), declined).unwrap();
        assert_eq!(
            d.state,
            State::Declined {
                res_cd: "R102".into()
            }
        );
        let ok = finish(
            &i,
            &lease,
            clock.now(),
            Finish::Succeeded {
                cancel_pg_cno: "c9".into(),
            },
        )
        .unwrap();
        assert_eq!(ok.cancel_pg_cno.as_deref(), Some("c9"));
    }

    #[test]
    fn wechat_pending_then_final_after_a_new_lease() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("w", Channel::Wechat, "pg", None));
        let (i, lease) = leased(&i, &clock);
        let (i, _) = record_attempt(&i, &lease, clock.now(), attempt("k1")).unwrap();
        let i = record_result(&i, &lease, clock.now(), 1, result(OutcomeKind::Pending)).unwrap();
        let p = finish(
            &i,
            &lease,
            clock.now(),
            Finish::Pending {
                cancel_pg_cno: "c1".into(),
            },
        )
        .unwrap();
        assert_eq!(p.state.kind(), StateKind::Pending);
        let (p, lease) = leased(&p, &clock);
        // Releasing an accepted cancel keeps it pending.
        assert_eq!(
            release(&p, &lease, clock.now()).unwrap().state.kind(),
            StateKind::Pending
        );
        // The accepted cancel's final failure may be recorded as declined.
        let d = finish(
            &p,
            &lease,
            clock.now(),
            Finish::Declined {
                res_cd: "W001".into(),
                detail: "refund failed".into(),
            },
        )
        .unwrap();
        assert_eq!(d.state.kind(), StateKind::Declined);
        // Generic cancels are never pending.
        let g = Intent::planned(2, spec("g", Channel::Generic, "pg2", None));
        let (g, gl) = leased(&g, &clock);
        let (g, _) = record_attempt(&g, &gl, clock.now(), attempt("k")).unwrap();
        assert!(record_result(&g, &gl, clock.now(), 1, result(OutcomeKind::Pending)).is_err());
    }

    #[test]
    fn release_goes_back_to_planned_only_when_nothing_was_recorded() {
        let clock = Clock(0);
        let i = Intent::planned(1, spec("a", Channel::Generic, "pg", None));
        let (held, lease) = leased(&i, &clock);
        assert_eq!(
            release(&held, &lease, clock.now()).unwrap().state,
            State::Planned
        );
        let (held, _) = record_attempt(&held, &lease, clock.now(), attempt("k")).unwrap();
        assert_eq!(
            release(&held, &lease, clock.now()).unwrap().state,
            State::Unknown
        );
    }
    #[test]
    fn start_leases_and_records_the_first_attempt_built_for_the_leased_intent() {
        let clock = Clock(1_000);
        let planned = Intent::planned(1, spec("r-1", Channel::Alipay, "pg1", None));
        let started = start(
            &planned,
            &me(),
            clock.now(),
            TTL,
            Duration::from_secs(40),
            None,
            true,
            |i| {
                // The builder sees the intent already in flight under the new lease.
                assert_eq!(i.state.kind(), StateKind::InFlight);
                Some(attempt("k-1"))
            },
        )
        .unwrap();
        assert_eq!(started.lease.generation, planned.generation + 1);
        assert_eq!(started.lease.expires_at, clock.now().plus(TTL));
        let a = started.attempt.expect("an attempt");
        assert_eq!(
            (a.number, a.key.as_str(), a.sent_at),
            (1, "k-1", clock.now())
        );
        assert!(a.result.is_none());
        assert_eq!(started.intent.attempts, vec![a]);
        assert_eq!(started.intent.state.kind(), StateKind::InFlight);
        // The same as acquire and then record_attempt, one after the other.
        let (i, l) = leased(&planned, &clock);
        let (i, _) = record_attempt(&i, &l, clock.now(), attempt("k-1")).unwrap();
        assert_eq!(started.intent, i);
    }

    #[test]
    fn start_refuses_a_lease_shorter_than_the_attempt_needs_and_what_acquire_refuses() {
        let clock = Clock(1_000);
        let planned = Intent::planned(2, spec("r-2", Channel::Generic, "pg1", None));
        let short = start(
            &planned,
            &me(),
            clock.now(),
            Duration::from_secs(30),
            Duration::from_secs(40),
            None,
            true,
            |_| Some(attempt("k-1")),
        )
        .unwrap_err();
        assert!(
            matches!(short, TransitionError::LeaseTooShort { .. }),
            "{short:?}"
        );
        // Held back by an earlier open intent on the same payment: nothing is built.
        let earlier = Intent::planned(1, spec("r-1", Channel::Generic, "pg1", None));
        let blocked = start(
            &planned,
            &me(),
            clock.now(),
            TTL,
            Duration::from_secs(40),
            Some(&earlier),
            true,
            |_| -> Option<AttemptPlan> { panic!("built a message for an intent not leased") },
        )
        .unwrap_err();
        assert!(
            matches!(blocked, TransitionError::Blocked { .. }),
            "{blocked:?}"
        );
        // In flight under another live owner: busy.
        let (theirs, _) = acquire(&planned, &other(), clock.now(), TTL, None, true).unwrap();
        let busy = start(
            &theirs,
            &me(),
            clock.now(),
            TTL,
            Duration::from_secs(40),
            None,
            true,
            |_| Some(attempt("k-1")),
        )
        .unwrap_err();
        assert!(matches!(busy, TransitionError::Busy { .. }), "{busy:?}");
    }

    #[test]
    fn start_without_a_message_only_leases() {
        let clock = Clock(1_000);
        let planned = Intent::planned(1, spec("r-1", Channel::Wechat, "pg1", None));
        let started = start(
            &planned,
            &me(),
            clock.now(),
            TTL,
            Duration::from_secs(40),
            None,
            true,
            |_| None,
        )
        .unwrap();
        assert!(started.attempt.is_none());
        assert!(started.intent.attempts.is_empty());
        assert_eq!(started.intent.state.kind(), StateKind::InFlight);
    }
}

#[cfg(test)]
mod properties {
    //! Random operation sequences against the pure rules, with two workers and a virtual
    //! clock: whatever the order, the invariants hold.
    use super::*;
    use crate::model::{IntentParams, StateKind};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Acquire {
            worker: usize,
            alive: bool,
        },
        Renew {
            worker: usize,
        },
        Attempt {
            worker: usize,
            key: u8,
        },
        Result {
            worker: usize,
            outcome: u8,
        },
        Finish {
            worker: usize,
            kind: u8,
            keys: Vec<u8>,
        },
        Release {
            worker: usize,
        },
        Tick {
            ms: u16,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let w = 0usize..2;
        prop_oneof![
            (w.clone(), any::<bool>()).prop_map(|(worker, alive)| Op::Acquire { worker, alive }),
            w.clone().prop_map(|worker| Op::Renew { worker }),
            (w.clone(), 0u8..3).prop_map(|(worker, key)| Op::Attempt { worker, key }),
            (w.clone(), 0u8..5).prop_map(|(worker, outcome)| Op::Result { worker, outcome }),
            (w.clone(), 0u8..6, proptest::collection::vec(0u8..3, 0..3))
                .prop_map(|(worker, kind, keys)| Op::Finish { worker, kind, keys }),
            w.prop_map(|worker| Op::Release { worker }),
            (0u16..40_000).prop_map(|ms| Op::Tick { ms }),
        ]
    }

    const OUTCOMES: [OutcomeKind; 5] = [
        OutcomeKind::Succeeded,
        OutcomeKind::Declined,
        OutcomeKind::NotDelivered,
        OutcomeKind::Ambiguous,
        OutcomeKind::Pending,
    ];

    fn check(channel: Channel, ops: Vec<Op>) {
        let spec = IntentParams::new("p", channel, "pg").validate().unwrap();
        let mut intent = Intent::planned(1, spec);
        let owners = [OwnerId("w0".into()), OwnerId("w1".into())];
        let mut leases: [Option<Lease>; 2] = [None, None];
        let mut now = Timestamp(0);
        let ttl = Duration::from_secs(30);
        for op in ops {
            let before = intent.clone();
            let worker = match &op {
                Op::Tick { ms } => {
                    now = now.plus(Duration::from_millis(u64::from(*ms)));
                    continue;
                }
                Op::Acquire { worker, .. }
                | Op::Renew { worker }
                | Op::Attempt { worker, .. }
                | Op::Result { worker, .. }
                | Op::Finish { worker, .. }
                | Op::Release { worker } => *worker,
            };
            let held = leases[worker].clone();
            let result: Result<Intent, TransitionError> = match (&op, &held) {
                (Op::Acquire { alive, .. }, _) => {
                    acquire(&intent, &owners[worker], now, ttl, None, *alive).map(|(i, l)| {
                        leases[worker] = Some(l);
                        i
                    })
                }
                (_, None) => continue,
                (Op::Renew { .. }, Some(l)) => renew(&intent, l, now, ttl).map(|(i, l)| {
                    leases[worker] = Some(l);
                    i
                }),
                (Op::Attempt { key, .. }, Some(l)) => {
                    let plan = AttemptPlan {
                        key: format!("k{key}"),
                        korea_date: "20261202".into(),
                        request: vec![*key],
                    };
                    let may_send = check_lease(&intent, l, now, true).is_ok()
                        && intent.attempts.last().is_none_or(|a| a.result.is_some());
                    let key_free = intent
                        .attempts
                        .iter()
                        .filter(|a| a.key == plan.key)
                        .all(Attempt::never_delivered);
                    let recorded = record_attempt(&intent, l, now, plan).map(|(i, _)| i);
                    if channel == Channel::Generic && may_send {
                        // The exact rule: accepted if and only if the key is unused or
                        // every earlier attempt with it was recorded not delivered.
                        assert_eq!(recorded.is_ok(), key_free, "{recorded:?}");
                    }
                    recorded
                }
                (Op::Result { outcome, .. }, Some(l)) => {
                    let n = u32::try_from(intent.attempts.len()).unwrap_or(0);
                    let r = AttemptResult {
                        http_status: Some(200),
                        res_cd: Some("0000".into()),
                        detail: String::new(),
                        outcome: OUTCOMES[usize::from(*outcome)],
                    };
                    record_result(&intent, l, now, n.max(1), r)
                }
                (Op::Finish { kind, keys, .. }, Some(l)) => {
                    let keys: Vec<String> = keys.iter().map(|k| format!("k{k}")).collect();
                    let f = match kind {
                        0 => Finish::Succeeded {
                            cancel_pg_cno: "c".into(),
                        },
                        1 => Finish::Declined {
                            res_cd: "R".into(),
                            detail: String::new(),
                        },
                        2 => Finish::NotProcessed(NotProcessedProof::NothingDelivered),
                        3 => Finish::NotProcessed(NotProcessedProof::KeysAbsent {
                            keys: keys.clone(),
                        }),
                        4 => Finish::Unknown {
                            detail: String::new(),
                        },
                        _ => Finish::Pending {
                            cancel_pg_cno: "c".into(),
                        },
                    };
                    finish(&intent, l, now, f).inspect(|i| {
                        // Not processed only with proof for every maybe-processed key.
                        if i.state == State::NotProcessed {
                            for a in before
                                .attempts
                                .iter()
                                .filter(|a| a.may_have_been_processed())
                            {
                                assert!(*kind == 3 && keys.contains(&a.key), "{a:?} {keys:?}");
                            }
                        }
                        // Declined never follows an earlier maybe-processed attempt,
                        // except the final failure of an accepted WeChat cancel.
                        if matches!(i.state, State::Declined { .. })
                            && before.cancel_pg_cno.is_none()
                        {
                            let n = before.attempts.len();
                            assert!(before.attempts[..n - 1]
                                .iter()
                                .all(|a| !a.may_have_been_processed()));
                        }
                    })
                }
                (Op::Release { .. }, Some(l)) => release(&intent, l, now),
                (Op::Tick { .. }, _) => continue,
            };
            let Ok(next) = result else {
                continue;
            };
            // Final states never change.
            assert!(
                !before.state.kind().is_final(),
                "{before:?} changed to {next:?}"
            );
            // Only the current lease holder writes (fencing), except taking a lease.
            if !matches!(op, Op::Acquire { .. }) {
                let l = held.as_ref().unwrap();
                assert_eq!(l.generation, before.generation);
            } else {
                assert_eq!(next.generation, before.generation + 1);
            }
            // Attempts are only appended, and recorded results never change.
            assert!(next.attempts.len() >= before.attempts.len());
            for (a, b) in before.attempts.iter().zip(&next.attempts) {
                assert_eq!(
                    (&a.key, &a.request, a.sent_at),
                    (&b.key, &b.request, b.sent_at)
                );
                if a.result.is_some() {
                    assert_eq!(a.result, b.result);
                }
            }
            // Wallet attempts repeat the first message. A generic attempt repeats a key
            // only when every earlier attempt with that key has a recorded result of
            // "not delivered" (never a missing result, never any other outcome), and a
            // new attempt is refused exactly when that does not hold.
            if channel.resends_identically() {
                assert!(next.attempts.iter().all(|a| a.key == next.attempts[0].key));
            } else {
                for (i, a) in next.attempts.iter().enumerate() {
                    for earlier in next.attempts[..i].iter().filter(|e| e.key == a.key) {
                        assert_eq!(
                            earlier.result.as_ref().map(|r| r.outcome),
                            Some(OutcomeKind::NotDelivered),
                            "{a:?} reuses the key of {earlier:?}"
                        );
                    }
                }
            }
            intent = next;
        }
        let _ = StateKind::ALL;
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn generic_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 0..40)) {
            check(Channel::Generic, ops);
        }

        #[test]
        fn wechat_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 0..40)) {
            check(Channel::Wechat, ops);
        }
    }
}
