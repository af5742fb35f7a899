//! Table tests of the WeChat Pay direct revoke's retry behaviour, the same kind as
//! kicc-core's `retry/tests.rs`: a virtual clock, scripted answers, no sockets, no sleeps.
//! Each row drives a [`Revocation`] (the state machine `ReverseClient` runs) with real
//! signed requests and real, signed or unsigned, answers read by the crate's own
//! interpreters.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "transport")]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::fake::{json, raw, signed_204, MERCHANT_SERIAL, NOW};
use common::*;
use http::StatusCode;
use wechatpay_direct::kicc_transport::TransportError;
use wechatpay_direct::{
    interpret_query_response, interpret_reverse_response, sign_response, AttemptRecord, Heard,
    MerchantMode, Nonce, Now, OrderRef, QueryError, Resolution, RetryPolicy, ReverseError,
    ReverseRequest, Revocation, RevokeStep, Rng, SerialNo, Settled, SignedRequest,
};

/// One scripted answer to a revoke attempt or an order query.
#[derive(Debug, Clone, Copy)]
enum Ev {
    /// HTTP 204, signed by the platform key.
    Revoked,
    /// HTTP 204 whose signature is a `WECHATPAY/SIGNTEST/` probe.
    Probe,
    /// A JSON error `{code, message}` with this status.
    Api(u16, &'static str),
    /// A non-JSON error body with this status (a proxy's).
    Html(u16),
    /// No answer within the timeout: may have arrived.
    Timeout,
    /// The connection was refused: never delivered.
    ConnRefused,
    /// The connection was reset after the request was written: may have arrived.
    Reset,
    /// The order query answers this `trade_state` (signed 200).
    State(&'static str),
    /// The order query itself failed (timeouts, retries used up).
    QueryFails,
}
use Ev::*;

fn wall(now: Now) -> u64 {
    now.wall.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn transport_error(ev: Ev) -> Option<TransportError> {
    match ev {
        Timeout => Some(TransportError::Timeout(Duration::from_secs(30))),
        ConnRefused => Some(TransportError::Connect("connection refused".into())),
        Reset => Some(TransportError::Io("connection reset by peer".into())),
        _ => None,
    }
}

fn revoke_answer(ev: Ev, now: Now) -> Result<wechatpay_direct::ReverseOutcome, ReverseError> {
    if let Some(e) = transport_error(ev) {
        return Err(ReverseError::Transport(e));
    }
    let response = match ev {
        Revoked => signed_204(wall(now) as i64, None),
        Probe => signed_204(
            wall(now) as i64,
            Some("WECHATPAY/SIGNTEST/c2lnbmF0dXJlIHRlc3Q="),
        ),
        Api(status, code) => json(
            status,
            &format!(r#"{{"code":"{code}","message":"scripted {code}"}}"#),
        ),
        Html(status) => raw(status, "<html>bad gateway</html>"),
        other => panic!("{other:?} is not a revoke answer"),
    };
    interpret_reverse_response(
        response.status(),
        response.headers(),
        response.body(),
        ts(wall(now)),
        &key_store(),
    )
}

fn query_answer(ev: Ev, now: Now) -> Result<wechatpay_direct::QueriedOrder, QueryError> {
    let state = match ev {
        State(s) => s,
        QueryFails => {
            return Err(QueryError::RetriesExhausted {
                attempts: 3,
                last: Box::new(QueryError::Transport(TransportError::Timeout(
                    Duration::from_secs(30),
                ))),
            })
        }
        other => panic!("{other:?} is not a query answer"),
    };
    let body = format!(r#"{{"out_trade_no":"ORDER-1","trade_state":"{state}"}}"#);
    let headers = sign_response(
        body.as_bytes(),
        ts(wall(now)),
        &Nonce::new("593BEC0C930BF1AFEB40B4A08C8FB242").unwrap(),
        &cert_2048_serial(),
        &key(KEY_2048),
    )
    .unwrap();
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    headers.write_to(response.headers_mut());
    interpret_query_response(
        response.status(),
        response.headers(),
        response.body(),
        ts(wall(now)),
        &key_store(),
    )
}

fn order() -> OrderRef {
    OrderRef::out_trade_no("ORDER-1").unwrap()
}

fn sign_at(now: Now, n: u32) -> SignedRequest {
    ReverseRequest::new(order(), MerchantMode::common("1900000109").unwrap())
        .sign(
            &SerialNo::new(MERCHANT_SERIAL).unwrap(),
            &key(KEY_3072),
            ts(wall(now)),
            &Nonce::new(format!("{n:032}")).unwrap(),
        )
        .unwrap()
}

fn start() -> Now {
    Now::new(Instant::now(), UNIX_EPOCH + Duration::from_secs(NOW))
}

/// What a run did: `S<n>` is a send of the n-th signature made in this run (`S0`: the
/// stored one a resume was given), `Q` an order query; the sends' bytes; the resolution.
struct Run {
    trace: String,
    sent: Vec<SignedRequest>,
    resolution: Resolution,
    records: Vec<AttemptRecord>,
    waited: Duration,
}

/// Drives `revocation` through `script` on a virtual clock.
fn run(mut revocation: Revocation, script: &[Ev], stored: Option<&SignedRequest>) -> Run {
    let t0 = start();
    let mut now = t0;
    let mut script = script.iter().copied();
    let mut signatures: Vec<SignedRequest> = stored.cloned().into_iter().collect();
    let offset = usize::from(stored.is_none());
    let mut trace = Vec::new();
    let mut sent = Vec::new();
    loop {
        match revocation.poll(now) {
            RevokeStep::Sign => {
                let n = u32::try_from(signatures.len() + offset).unwrap();
                let s = sign_at(now, n);
                signatures.push(s.clone());
                revocation.signed(s);
            }
            RevokeStep::Send(signed) => {
                let i = signatures
                    .iter()
                    .position(|s| s.headers() == signed.headers() && s.body() == signed.body())
                    .expect("a send of bytes that were signed");
                trace.push(format!("S{}", i + offset));
                sent.push(signed.clone());
                let ev = script.next().expect("the script ran out at a send");
                let answer = revoke_answer(ev, now);
                revocation.on_revoke(answer, now);
            }
            RevokeStep::Query => {
                trace.push("Q".to_owned());
                let ev = script.next().expect("the script ran out at a query");
                revocation.on_query(query_answer(ev, now));
            }
            RevokeStep::WaitUntil(until) => {
                assert!(until > now.instant, "a wait that does not move the clock");
                now = now.plus(until - now.instant);
            }
            RevokeStep::Done(resolution) => {
                assert_eq!(
                    script.next().map(|e| format!("{e:?}")),
                    None,
                    "unused script"
                );
                return Run {
                    trace: trace.join(" "),
                    sent,
                    resolution,
                    records: revocation.records().to_vec(),
                    waited: now.instant - t0.instant,
                };
            }
            other => panic!("unexpected step {other:?}"),
        }
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(200))
        .max_backoff(Duration::from_secs(2))
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn fresh() -> Revocation {
    Revocation::new(&policy(), Rng::from_seed([9; 32]))
}

/// The resolution's variant name.
fn kind(r: &Resolution) -> &'static str {
    match r {
        Resolution::Revoked(_) => "Revoked",
        Resolution::RevokedPerQuery(_) => "RevokedPerQuery",
        Resolution::Closed(_) => "Closed",
        Resolution::NotRevoked(_) => "NotRevoked",
        Resolution::StillNotRevoked(_) => "StillNotRevoked",
        Resolution::RefundInstead(_) => "RefundInstead",
        Resolution::UnknownState(_) => "UnknownState",
        Resolution::QueryFailed { .. } => "QueryFailed",
        _ => "other",
    }
}

/// Every send of one signature carries identical bytes.
fn assert_identical_per_signature(run: &Run) {
    for (i, a) in run.sent.iter().enumerate() {
        for b in &run.sent[i..] {
            if a.nonce() == b.nonce() {
                assert_eq!(a.headers(), b.headers());
                assert_eq!(a.body(), b.body());
                assert_eq!(a.signed_message(), b.signed_message());
            }
        }
    }
}

#[test]
fn revoke_retry_table() {
    use Settled::{Done, NotDone, Unknown};
    // (name, script, trace, resolution, settled)
    let table: &[(&str, &[Ev], &str, &str, Settled)] = &[
        ("verified 204 at once", &[Revoked], "S1", "Revoked", Done),
        (
            "5xx then success: the identical bytes again",
            &[Api(500, "INTERNAL_ERROR"), Html(502), Revoked],
            "S1 S1 S1",
            "Revoked",
            Done,
        ),
        (
            "timeout, then SYSTEM_ERROR: query at once, REVOKED",
            &[Timeout, Api(500, "SYSTEM_ERROR"), State("REVOKED")],
            "S1 S1 Q",
            "RevokedPerQuery",
            Done,
        ),
        (
            "timeout, SYSTEM_ERROR, CLOSED: nothing charged",
            &[Timeout, Api(500, "SYSTEM_ERROR"), State("CLOSED")],
            "S1 S1 Q",
            "Closed",
            Done,
        ),
        (
            "timeout, SYSTEM_ERROR, still SUCCESS: a fresh signature, revoked",
            &[Timeout, Api(500, "SYSTEM_ERROR"), State("SUCCESS"), Revoked],
            "S1 S1 Q S2",
            "Revoked",
            Done,
        ),
        (
            "SUCCESS after the second revoke too: not revoked, per the query",
            &[
                Api(500, "SYSTEM_ERROR"),
                State("USERPAYING"),
                Api(500, "SYSTEM_ERROR"),
                State("NOTPAY"),
            ],
            "S1 Q S2 Q",
            "StillNotRevoked",
            NotDone,
        ),
        (
            "REFUND: refund instead",
            &[Api(500, "SYSTEM_ERROR"), State("REFUND")],
            "S1 Q",
            "RefundInstead",
            NotDone,
        ),
        (
            "PAYERROR: unknown",
            &[Api(500, "SYSTEM_ERROR"), State("PAYERROR")],
            "S1 Q",
            "UnknownState",
            Unknown,
        ),
        (
            "an unknown trade_state: unknown",
            &[Api(500, "SYSTEM_ERROR"), State("ACCEPT")],
            "S1 Q",
            "UnknownState",
            Unknown,
        ),
        (
            "SYSTEM_ERROR and the query fails: unknown, never a revoke outcome",
            &[Api(500, "SYSTEM_ERROR"), QueryFails],
            "S1 Q",
            "QueryFailed",
            Unknown,
        ),
        (
            "a probe signature on the 204: query, never trusted",
            &[Probe, State("REVOKED")],
            "S1 Q",
            "RevokedPerQuery",
            Done,
        ),
        (
            "refused connection every time: never delivered, not revoked, no query",
            &[ConnRefused, ConnRefused, ConnRefused],
            "S1 S1 S1",
            "NotRevoked",
            NotDone,
        ),
        (
            "refused connection, then delivered",
            &[ConnRefused, Revoked],
            "S1 S1",
            "Revoked",
            Done,
        ),
        (
            "reset after write, then refusals of the connection: attempts used up after a maybe-delivered attempt, so the query decides",
            &[Reset, ConnRefused, ConnRefused, QueryFails],
            "S1 S1 S1 Q",
            "QueryFailed",
            Unknown,
        ),
        (
            "timeouts until the attempts are used up, the query says REVOKED",
            &[Timeout, Timeout, Timeout, State("REVOKED")],
            "S1 S1 S1 Q",
            "RevokedPerQuery",
            Done,
        ),
        (
            "a definite refusal at once: not revoked",
            &[Api(403, "REVERSE_EXPIRE")],
            "S1",
            "NotRevoked",
            NotDone,
        ),
        (
            "reset after write, then REVERSE_EXPIRE: never 'not revoked' without the query",
            &[Reset, Api(403, "REVERSE_EXPIRE"), State("REVOKED")],
            "S1 S1 Q",
            "RevokedPerQuery",
            Done,
        ),
        (
            "reset after write, then REVERSE_EXPIRE, and the query fails: unknown",
            &[Reset, Api(403, "REVERSE_EXPIRE"), QueryFails],
            "S1 S1 Q",
            "QueryFailed",
            Unknown,
        ),
        (
            "an unknown code on a 4xx: query",
            &[Api(400, "NEW_CODE"), State("SUCCESS"), Revoked],
            "S1 Q S2",
            "Revoked",
            Done,
        ),
    ];
    for &(name, script, trace, resolution, settled) in table {
        let run = run(fresh(), script, None);
        assert_eq!(run.trace, trace, "{name}");
        assert_eq!(
            kind(&run.resolution),
            resolution,
            "{name}: {:?}",
            run.resolution
        );
        assert_eq!(run.resolution.settled(), settled, "{name}");
        assert_identical_per_signature(&run);
    }
}

#[test]
fn refused_connection_is_not_delivered_and_a_reset_is_unknown() {
    // Connection refused three times: certainly not revoked, retrying is safe.
    let refused = run(fresh(), &[ConnRefused, ConnRefused, ConnRefused], None);
    let Resolution::NotRevoked(ReverseError::RetriesExhausted {
        attempts: 3,
        may_have_reached_server: false,
        ..
    }) = &refused.resolution
    else {
        panic!("{:?}", refused.resolution)
    };
    assert!(refused
        .records
        .iter()
        .all(|r| r.heard() == Heard::NotDelivered));
    // Reset after write: maybe delivered; what is recorded says so.
    let reset = run(fresh(), &[Reset, Revoked], None);
    assert_eq!(
        reset
            .records
            .iter()
            .map(AttemptRecord::heard)
            .collect::<Vec<_>>(),
        [Heard::Unknown, Heard::Done]
    );
    // The backoff ran on the virtual clock: 100..=200 ms after the first attempt.
    assert!(
        reset.waited >= Duration::from_millis(100) && reset.waited <= Duration::from_millis(200)
    );
}

#[test]
fn the_deadline_stops_resends_and_the_query_decides() {
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .initial_backoff(Duration::from_secs(4))
        .max_backoff(Duration::from_secs(4))
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap();
    let run = run(
        Revocation::new(&policy, Rng::from_seed([1; 32])),
        &[Timeout, Timeout, State("SUCCESS"), Revoked],
        None,
    );
    // Two attempts fit in 5 s (the second 2-4 s after the first), a third would not.
    assert_eq!(run.trace, "S1 S1 Q S2");
    assert_eq!(kind(&run.resolution), "Revoked");
}

fn record(request: u32, secs_ago: u64, heard: Heard) -> AttemptRecord {
    AttemptRecord::new(
        request,
        UNIX_EPOCH + Duration::from_secs(NOW - secs_ago),
        heard,
    )
}

fn resumed(signed: Option<SignedRequest>, records: Vec<AttemptRecord>) -> Revocation {
    Revocation::resume(&policy(), Rng::from_seed([5; 32]), signed, records)
}

#[test]
fn resume_from_recorded_state() {
    let stored = |secs_ago: u64| {
        let at = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(NOW - secs_ago),
        );
        sign_at(at, 0)
    };
    // (name, stored signature age, records, script, trace, resolution, settled)
    type Row<'a> = (
        &'a str,
        Option<u64>,
        Vec<AttemptRecord>,
        &'a [Ev],
        &'a str,
        &'a str,
        Settled,
    );
    let table: Vec<Row<'_>> = vec![
        (
            "sent, then the process stopped: query first, REVOKED",
            Some(10),
            vec![record(1, 10, Heard::Nothing)],
            &[State("REVOKED")],
            "Q",
            "RevokedPerQuery",
            Settled::Done,
        ),
        (
            "sent, nothing heard, the query fails: unknown, never 'not revoked'",
            Some(10),
            vec![record(1, 10, Heard::Nothing)],
            &[QueryFails],
            "Q",
            "QueryFailed",
            Settled::Unknown,
        ),
        (
            "timeouts, then a restart: query; still SUCCESS, so a fresh revoke",
            None,
            vec![record(1, 20, Heard::Unknown), record(1, 19, Heard::Unknown)],
            &[State("SUCCESS"), Revoked],
            "Q S1",
            "Revoked",
            Settled::Done,
        ),
        (
            "a maybe-delivered attempt, then a refusal: the query decides, not the refusal",
            Some(30),
            vec![record(1, 30, Heard::Unknown), record(1, 29, Heard::Refused)],
            &[State("CLOSED")],
            "Q",
            "Closed",
            Settled::Done,
        ),
        (
            "never delivered, signature still fresh: the identical stored bytes again",
            Some(30),
            vec![record(1, 30, Heard::NotDelivered)],
            &[Revoked],
            "S0",
            "Revoked",
            Settled::Done,
        ),
        (
            "never delivered, signature too old to arrive: signed anew (nothing reached WeChat Pay)",
            Some(300),
            vec![record(1, 300, Heard::NotDelivered)],
            &[Revoked],
            "S1",
            "Revoked",
            Settled::Done,
        ),
        (
            "a recorded refusal and nothing maybe-delivered: not revoked, nothing sent",
            Some(30),
            vec![record(1, 30, Heard::Refused)],
            &[],
            "",
            "NotRevoked",
            Settled::NotDone,
        ),
        (
            "a recorded 204 carries no verified answer: the query confirms it",
            Some(30),
            vec![record(1, 30, Heard::Done)],
            &[State("REVOKED")],
            "Q",
            "RevokedPerQuery",
            Settled::Done,
        ),
    ];
    for (name, age, records, script, trace, resolution, settled) in table {
        let signed = age.map(stored);
        let run = run(
            resumed(signed.clone(), records.clone()),
            script,
            signed.as_ref(),
        );
        assert_eq!(run.trace, trace, "{name}");
        assert_eq!(
            kind(&run.resolution),
            resolution,
            "{name}: {:?}",
            run.resolution
        );
        assert_eq!(run.resolution.settled(), settled, "{name}");
        // The journal keeps growing from what was recorded.
        assert_eq!(&run.records[..records.len()], &records[..], "{name}");
    }
}

#[test]
fn a_query_that_fails_after_a_resume_names_the_recorded_attempt() {
    let run = run(
        resumed(None, vec![record(1, 10, Heard::Nothing)]),
        &[QueryFails],
        None,
    );
    let Resolution::QueryFailed { last_revoke, .. } = &run.resolution else {
        panic!("{:?}", run.resolution)
    };
    let Err(ReverseError::Recorded { attempts: 1, heard }) = **last_revoke else {
        panic!("{last_revoke:?}")
    };
    assert_eq!(heard, Heard::Nothing);
    assert_eq!(
        last_revoke.as_ref().as_ref().unwrap_err().next_step(),
        wechatpay_direct::NextStep::QueryOrder
    );
}

#[test]
fn a_stored_request_restores_to_the_identical_bytes() {
    let original = sign_at(start(), 7);
    let restored = SignedRequest::restore(
        original.method(),
        original.order().cloned(),
        original.path().as_str(),
        original.body().clone(),
        original.authorization(),
    )
    .unwrap();
    assert_eq!(restored.headers(), original.headers());
    assert_eq!(restored.body(), original.body());
    assert_eq!(restored.signed_message(), original.signed_message());
    assert_eq!(restored.timestamp(), original.timestamp());
    assert!(SignedRequest::restore(
        original.method(),
        None,
        original.path().as_str(),
        original.body().clone(),
        "Bearer nope",
    )
    .is_err());
    // A resumed revoke resends exactly these bytes.
    let run = run(
        resumed(
            Some(restored.clone()),
            vec![record(1, 5, Heard::NotDelivered)],
        ),
        &[Revoked],
        Some(&restored),
    );
    assert_eq!(run.trace, "S0");
    assert_eq!(run.sent[0].headers(), original.headers());
    let _: SystemTime = run.records[1].sent_at();
}

#[test]
fn answers_nobody_asked_for_are_ignored() {
    let mut revocation = fresh();
    // No query was asked for: a query answer changes nothing.
    revocation.on_query(query_answer(State("REVOKED"), start()));
    // No attempt is in flight: a revoke answer changes nothing either.
    revocation.on_revoke(revoke_answer(Revoked, start()), start());
    assert!(revocation.records().is_empty());
    let run = run(revocation, &[Api(403, "REVERSE_EXPIRE")], None);
    assert_eq!(run.trace, "S1");
    assert_eq!(kind(&run.resolution), "NotRevoked");
}
