//! Table tests of the retry machine, driven with a virtual clock and scripted answers.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::*;
use crate::date::{KoreaDate, KoreaDateTime};
use crate::error::Error;
use crate::field::FieldError;
use crate::random::Rng;
use crate::revise::{Channel, RetryStyle};
use crate::text::ShopTransactionId;

const PG: &str = "PG1";

/// A minimal exchange: the request body is `key|date|flag`, a look-up is `LOOKUP|key|date`;
/// answers are JSON with the fields [`Describes`] reads.
struct Fake {
    channel: Channel,
    style: Option<RetryStyle>,
    key: ShopTransactionId,
    date: KoreaDate,
    flag: bool,
    amount: Option<u64>,
    request: http::Request<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    res_cd: String,
    #[serde(default)]
    res_msg: String,
    #[serde(default)]
    shop_transaction_id: String,
    #[serde(default)]
    pg_cno: String,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    transaction_date: String,
    #[serde(default)]
    cancel_pg_cno: String,
}

impl Describes for Answer {
    fn described_key(&self) -> &str {
        &self.shop_transaction_id
    }
    fn described_pg_cno(&self) -> &str {
        &self.pg_cno
    }
    fn described_amount(&self) -> Option<u64> {
        self.amount
    }
    fn transaction_date(&self) -> &str {
        &self.transaction_date
    }
    fn described_cancel_pg_cno(&self) -> &str {
        &self.cancel_pg_cno
    }
}

impl Fake {
    fn new(channel: Channel, wall: SystemTime) -> Self {
        let mut f = Fake {
            channel,
            style: None,
            key: ShopTransactionId::new("FIRSTKEY").unwrap(),
            date: KoreaDate::of(wall),
            flag: false,
            amount: Some(1000),
            request: http::Request::new(Bytes::new()),
        };
        f.rebuild();
        f
    }
    fn query(wall: SystemTime) -> Self {
        let mut f = Fake::new(Channel::WeChat, wall);
        f.style = Some(RetryStyle::Query);
        f.amount = None;
        f
    }
    fn rebuild(&mut self) {
        let body = format!(
            "{}|{}|{}",
            self.key,
            self.date,
            if self.flag { "Y" } else { "N" }
        );
        self.request = http::Request::new(Bytes::from(body));
    }
}

impl Exchange for Fake {
    type Output = Answer;
    fn channel(&self) -> Channel {
        self.channel
    }
    fn retry_style(&self) -> RetryStyle {
        self.style.unwrap_or(self.channel.retry_style())
    }
    fn request(&self) -> &http::Request<Bytes> {
        &self.request
    }
    fn shop_transaction_id(&self) -> &ShopTransactionId {
        &self.key
    }
    fn request_date(&self) -> Option<KoreaDate> {
        Some(self.date)
    }
    fn is_refund_query(&self) -> bool {
        self.flag
    }
    fn expected(&self) -> Expected<'_> {
        Expected {
            pg_cno: PG,
            amount: self.amount,
        }
    }
    fn interpret(&self, body: &[u8]) -> Interpreted<Answer> {
        match serde_json::from_slice::<Answer>(body) {
            Ok(a) if a.res_cd == "0000" => Interpreted::Success(a),
            Ok(a) => Interpreted::Gateway {
                res_cd: a.res_cd,
                res_msg: a.res_msg,
                detail: None,
            },
            Err(e) => Interpreted::Unreadable(e.to_string()),
        }
    }
    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError> {
        match resend {
            Resend::Undelivered { now } => self.date = KoreaDate::of(now),
            Resend::Fresh {
                new_key,
                now,
                refund_query,
            } => {
                self.key = new_key;
                self.date = KoreaDate::of(now);
                self.flag = refund_query;
            }
        }
        self.rebuild();
        Ok(())
    }
    fn lookup(
        &self,
        key: &ShopTransactionId,
        date: KoreaDate,
    ) -> Option<Result<http::Request<Bytes>, FieldError>> {
        (self.retry_style() == RetryStyle::LookUp).then(|| {
            Ok(http::Request::new(Bytes::from(format!(
                "LOOKUP|{key}|{date}"
            ))))
        })
    }
}

/// A scripted reply, made from the request it answers (`key`, `date`, the whole body).
enum Reply {
    Status(u16, String),
    NotDelivered,
    Unknown,
}

struct Sent {
    body: String,
    at: SystemTime,
}

impl Sent {
    fn key(&self) -> &str {
        self.body
            .split('|')
            .nth(usize::from(self.is_lookup()))
            .unwrap_or("")
    }
    fn is_lookup(&self) -> bool {
        self.body.starts_with("LOOKUP|")
    }
}

type Script<'a> = &'a [&'a dyn Fn(&Sent) -> Reply];

/// Drives a cancellation through scripted replies on a virtual clock; returns what was sent
/// and the outcome.
fn run(
    c: &mut Cancellation<Fake>,
    start_wall: SystemTime,
    script: Script<'_>,
) -> (Vec<Sent>, Result<Answer, Error>) {
    let start = Instant::now();
    let mut now = Now::new(start, start_wall);
    let mut sent: Vec<Sent> = vec![];
    let mut script = script.iter();
    loop {
        match c.poll(now) {
            Action::Send(req) => {
                let body = String::from_utf8(req.body().to_vec()).unwrap();
                let _ = req;
                match c.in_flight() {
                    Some(InFlight::Attempt(a)) => {
                        assert!(!body.starts_with("LOOKUP|"));
                        assert!(body.starts_with(a.key.as_str()));
                    }
                    Some(InFlight::LookUp { key, date }) => {
                        assert_eq!(body, format!("LOOKUP|{key}|{date}"));
                    }
                    None => panic!("a request was sent with nothing in flight"),
                }
                let s = Sent { body, at: now.wall };
                let reply = (script.next().expect("script too short"))(&s);
                sent.push(s);
                now = now.plus(Duration::from_millis(10));
                match &reply {
                    Reply::Status(status, body) => c.on_delivery(
                        Delivery::Response {
                            status: *status,
                            body: body.as_bytes(),
                        },
                        now,
                    ),
                    Reply::NotDelivered => {
                        c.on_delivery(Delivery::NotDelivered { reason: "refused" }, now)
                    }
                    Reply::Unknown => c.on_delivery(
                        Delivery::Unknown {
                            reason: "timed out",
                        },
                        now,
                    ),
                }
            }
            Action::WaitUntil(t) => {
                assert!(t > now.instant);
                now = now.plus(t - now.instant);
            }
            Action::AwaitDelivery => panic!("polled while in flight"),
            Action::Done(r) => {
                assert!(
                    script.next().is_none(),
                    "the script has unused replies; sent {:?}",
                    sent.iter().map(|s| &s.body).collect::<Vec<_>>()
                );
                return (sent, r);
            }
        }
    }
}

fn cancellation(channel: Channel, wall: SystemTime, policy: RetryPolicy) -> Cancellation<Fake> {
    Cancellation::new(Fake::new(channel, wall), policy, Rng::from_seed([3; 32]))
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .lookup_not_found_code("R001")
        .build()
        .unwrap()
}

/// A tied 0000: echoes the request's key, the payment and 1000, dated when it was sent.
fn ok(s: &Sent) -> Reply {
    answer(s, PG, 1000, s.at, "C-NEW")
}

fn answer(s: &Sent, pg: &str, amount: u64, at: SystemTime, cancel: &str) -> Reply {
    Reply::Status(
        200,
        format!(
            r#"{{"resCd":"0000","resMsg":"ok","shopTransactionId":"{}","pgCno":"{pg}","amount":{amount},"transactionDate":"{}","cancelPgCno":"{cancel}"}}"#,
            s.key(),
            KoreaDateTime::of(at)
        ),
    )
}

fn code(c: &'static str) -> impl Fn(&Sent) -> Reply {
    move |s: &Sent| {
        Reply::Status(
            200,
            format!(
                r#"{{"resCd":"{c}","resMsg":"m","shopTransactionId":"{}"}}"#,
                s.key()
            ),
        )
    }
}

fn not_found(s: &Sent) -> Reply {
    assert!(s.is_lookup(), "expected a look-up, got {}", s.body);
    code("R001")(s)
}

fn timeout(_: &Sent) -> Reply {
    Reply::Unknown
}

fn refused(_: &Sent) -> Reply {
    Reply::NotDelivered
}

fn http500(_: &Sent) -> Reply {
    Reply::Status(500, "oops".into())
}

fn late_evening() -> SystemTime {
    // 2026-11-21 23:59:59.500 KST: any retry (backoff >= 0.5 s) lands on the 22nd in Korea.
    UNIX_EPOCH + Duration::from_millis(1_795_273_199_500)
}

fn afternoon() -> SystemTime {
    // 2026-11-21 14:00:00 KST.
    UNIX_EPOCH + Duration::from_secs(1_795_273_200 - 10 * 3600)
}

fn reason(e: &Error) -> &str {
    match e {
        Error::Ambiguous { reason, .. } | Error::Transport { reason, .. } => reason,
        _ => "",
    }
}

#[test]
fn decision_table() {
    use Decision::*;
    use Observed::*;
    use ResendKind::*;
    let same = RetryStyle::SameRequest;
    let look = RetryStyle::LookUp;
    let query = RetryStyle::Query;
    let table = [
        (same, GatewayRetry, Retry(Identical)),
        (same, GatewayRefundQuery, Retry(Identical)),
        (same, OutcomeUnknown, Retry(Identical)),
        (same, NotDelivered, Retry(Undelivered)),
        (same, Rejected, Stop),
        (look, GatewayRetry, LookUp),
        (look, GatewayRefundQuery, LookUp),
        (look, OutcomeUnknown, LookUp),
        (look, NotDelivered, Retry(Undelivered)),
        (look, Rejected, Stop),
        (query, OutcomeUnknown, Retry(Fresh)),
        (query, NotDelivered, Retry(Undelivered)),
        (query, Rejected, Stop),
    ];
    for (style, obs, want) in table {
        assert_eq!(decide(style, obs), want, "{style:?} {obs:?}");
    }
}

#[test]
fn alipay_timeout_and_a212_resend_identical_bytes_even_across_midnight() {
    let mut c = cancellation(Channel::Alipay, late_evening(), policy());
    let (sent, out) = run(&mut c, late_evening(), &[&timeout, &code("A212"), &ok]);
    assert_eq!(out.unwrap().cancel_pg_cno, "C-NEW");
    assert_eq!(sent.len(), 3);
    // Same key, same (first attempt's) date, although the retries happen after midnight KST.
    assert!(
        sent.iter().all(|s| s.body == "FIRSTKEY|20261121|N"),
        "{:?}",
        sent.iter().map(|s| &s.body).collect::<Vec<_>>()
    );
}

#[test]
fn maybe_processed_then_declined_is_ambiguous_with_both_facts() {
    // Alipay: a 500 (maybe processed), then the identical resend is declined.
    let mut c = cancellation(Channel::Alipay, afternoon(), policy());
    let (sent, out) = run(&mut c, afternoon(), &[&http500, &code("E501")]);
    assert_eq!(sent.len(), 2);
    let err = out.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert!(reason(&err).contains("E501"), "{err}");
    assert!(reason(&err).contains("HTTP 500"), "{err}");
    assert_eq!(err.res_cd(), Some("E501"));
    match &err {
        Error::Ambiguous { sent, .. } => {
            assert_eq!(sent.len(), 1, "one key (resent identically): {sent:?}");
            assert_eq!(sent[0].key.as_str(), "FIRSTKEY");
        }
        _ => unreachable!(),
    }
    // Without the earlier doubt, the same decline is a plain decline.
    let mut c = cancellation(Channel::Alipay, afternoon(), policy());
    let (_, out) = run(&mut c, afternoon(), &[&code("E501")]);
    assert!(matches!(out.unwrap_err(), Error::Declined(g) if g.res_cd == "E501"));
}

#[test]
fn a_success_about_another_payment_or_amount_is_never_done() {
    for wrong in [
        &(|s: &Sent| answer(s, "OTHER", 1000, s.at, "C")) as &dyn Fn(&Sent) -> Reply,
        &|s: &Sent| answer(s, PG, 999, s.at, "C"),
        &|s: &Sent| {
            Reply::Status(
                200,
                format!(r#"{{"resCd":"0000","shopTransactionId":"{}"}}"#, s.key()),
            )
        },
    ] {
        // Wallet: resending would replay the same answer: unknown at once.
        let mut c = cancellation(Channel::Alipay, afternoon(), policy());
        let (sent, out) = run(&mut c, afternoon(), &[wrong]);
        assert_eq!(sent.len(), 1);
        assert!(out.unwrap_err().is_ambiguous());
    }
    // Generic: an untied 0000 is looked up; the look-up of this key finds it tied.
    let mut c = cancellation(Channel::Generic, afternoon(), policy());
    let (sent, out) = run(
        &mut c,
        afternoon(),
        &[&|s: &Sent| answer(s, PG, 999, s.at, "C"), &ok],
    );
    assert!(sent[1].is_lookup());
    assert_eq!(out.unwrap().cancel_pg_cno, "C-NEW");
}

#[test]
fn generic_unknown_outcome_is_looked_up_after_the_processing_bound_then_resent_fresh() {
    let mut c = cancellation(Channel::Generic, late_evening(), policy());
    let (sent, out) = run(
        &mut c,
        late_evening(),
        &[&timeout, &not_found, &not_found, &ok],
    );
    assert_eq!(out.unwrap().cancel_pg_cno, "C-NEW");
    assert_eq!(sent[0].body, "FIRSTKEY|20261121|N");
    // Sent at 23:59:59.5 KST: it may have been processed on the 21st or the 22nd.
    assert_eq!(sent[1].body, "LOOKUP|FIRSTKEY|20261121");
    assert_eq!(sent[2].body, "LOOKUP|FIRSTKEY|20261122");
    // Not before the send plus the processing bound.
    assert!(sent[1].at >= sent[0].at + Duration::from_secs(30));
    // Only then a new cancel: a new key, today's date, no refund query.
    let parts: Vec<&str> = sent[3].body.split('|').collect();
    assert_ne!(parts[0], "FIRSTKEY");
    assert_eq!(&parts[1..], ["20261122", "N"]);
}

#[test]
fn generic_look_up_tied_to_an_earlier_key_is_the_success_and_nothing_is_resent() {
    let mut c = cancellation(Channel::Generic, afternoon(), policy());
    let (sent, out) = run(
        &mut c,
        afternoon(),
        &[&code("VTIM"), &|s: &Sent| {
            assert!(s.is_lookup());
            answer(s, PG, 1000, afternoon(), "C-FIRST")
        }],
    );
    assert_eq!(sent.len(), 2);
    assert_eq!(out.unwrap().cancel_pg_cno, "C-FIRST");
}

#[test]
fn refund_query_answered_with_an_untied_earlier_cancel_is_not_a_success() {
    // The user asked for refund queries; an earlier, equal refund exists (dated an hour ago).
    let pol = policy()
        .to_builder()
        .refund_query_on_resend(true)
        .build()
        .unwrap();
    let earlier = afternoon() - Duration::from_secs(3600);
    let old = move |s: &Sent| answer(s, PG, 1000, earlier, "C-OLD");
    let mut c = cancellation(Channel::Generic, afternoon(), pol.clone());
    let (sent, out) = run(&mut c, afternoon(), &[&http500, &not_found, &old, &old]);
    assert!(sent[2].body.ends_with("|Y"), "{}", sent[2].body);
    assert!(sent[3].is_lookup());
    assert_eq!(
        out.unwrap_err(),
        Error::AlreadyCancelled {
            cancel_pg_cno: "C-OLD".into(),
            shop_transaction_id: sent[2].key().into(),
        }
    );
    // A refund query answered 0000 about a cancel dated now is looked up, and even then it
    // cannot be told from an earlier equal refund made moments before: unknown, never done.
    let mut c = cancellation(Channel::Generic, afternoon(), pol);
    let (sent, out) = run(&mut c, afternoon(), &[&http500, &not_found, &ok, &ok]);
    assert!(sent[3].is_lookup() && sent[3].key() == sent[2].key());
    let err = out.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert!(reason(&err).contains("refund query"), "{err}");
}

#[test]
fn generic_decline_after_keys_proven_absent_is_a_real_decline() {
    let mut c = cancellation(Channel::Generic, afternoon(), policy());
    let (_, out) = run(&mut c, afternoon(), &[&timeout, &not_found, &code("P003")]);
    assert!(matches!(out.unwrap_err(), Error::Declined(g) if g.res_cd == "P003"));
}

#[test]
fn look_up_failures_leave_the_outcome_unknown_with_every_key_and_when_to_look() {
    for failure in [
        &http500 as &dyn Fn(&Sent) -> Reply,
        &timeout,
        &refused,
        &code("E999"),
        &|s: &Sent| answer(s, "OTHER", 1000, s.at, "C"),
    ] {
        let mut c = cancellation(Channel::Generic, afternoon(), policy());
        let (sent, out) = run(&mut c, afternoon(), &[&timeout, failure]);
        let err = out.unwrap_err();
        match &err {
            Error::Ambiguous {
                sent: keys,
                lookup_after,
                ..
            } => {
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].resume_key(), "FIRSTKEY@20261121");
                assert_eq!(*lookup_after, Some(sent[0].at + Duration::from_secs(30)));
            }
            other => panic!("{other:?}"),
        }
    }
    // Without a known "not found" code, no look-up can prove anything.
    let mut c = cancellation(Channel::Generic, afternoon(), RetryPolicy::default());
    let (_, out) = run(&mut c, afternoon(), &[&timeout, &not_found]);
    assert!(out.unwrap_err().is_ambiguous());
}

#[test]
fn look_ups_outside_the_window_are_not_made() {
    // A resume two days later: retrieveTransaction only covers today and yesterday.
    let two_days = afternoon() + Duration::from_secs(2 * 86_400);
    let sent = vec![SentAttempt {
        key: ShopTransactionId::new("OLDKEY").unwrap(),
        date: KoreaDate::of(afternoon()),
        sent_at: Some(afternoon()),
        refund_query: false,
    }];
    let mut c = Cancellation::resume(
        Fake::new(Channel::Generic, two_days),
        policy(),
        Rng::from_seed([1; 32]),
        sent,
        two_days,
    );
    let (sent, out) = run(&mut c, two_days, &[]);
    assert!(sent.is_empty());
    let err = out.unwrap_err();
    assert!(reason(&err).contains("today and yesterday"), "{err}");
}

#[test]
fn resumed_generic_cancel_looks_up_first_and_sends_only_if_nothing_was_processed() {
    let now = afternoon();
    let keys = vec![
        SentAttempt {
            key: ShopTransactionId::new("K1").unwrap(),
            date: KoreaDate::of(now),
            sent_at: None,
            refund_query: false,
        },
        SentAttempt {
            key: ShopTransactionId::new("K2").unwrap(),
            date: KoreaDate::of(now),
            sent_at: None,
            refund_query: false,
        },
    ];
    let mut c = Cancellation::resume(
        Fake::new(Channel::Generic, now),
        policy(),
        Rng::from_seed([1; 32]),
        keys.clone(),
        now,
    );
    let (sent, out) = run(&mut c, now, &[&not_found, &not_found, &ok]);
    assert_eq!(sent[0].body, "LOOKUP|K1|20261121");
    assert_eq!(sent[1].body, "LOOKUP|K2|20261121");
    // Unknown send times: a full processing bound from the resume.
    assert!(sent[0].at >= now + Duration::from_secs(30));
    assert!(!sent[2].is_lookup());
    assert!(out.is_ok());
    // K2 was processed (dated from the start of its day: not "earlier"): that is the success.
    let mut c = Cancellation::resume(
        Fake::new(Channel::Generic, now),
        policy(),
        Rng::from_seed([1; 32]),
        keys,
        now,
    );
    let morning = KoreaDate::of(now).start() + Duration::from_secs(3600);
    let (sent, out) = run(
        &mut c,
        now,
        &[&not_found, &move |s: &Sent| {
            answer(s, PG, 1000, morning, "C-K2")
        }],
    );
    assert_eq!(sent.len(), 2);
    assert_eq!(out.unwrap().cancel_pg_cno, "C-K2");
}

#[test]
fn resumed_wallet_cancel_resends_identically_and_a_decline_is_ambiguous() {
    let now = afternoon();
    let stored = Fake::new(Channel::Alipay, now - Duration::from_secs(600));
    let keys = vec![SentAttempt {
        key: stored.key.clone(),
        date: stored.date,
        sent_at: None,
        refund_query: false,
    }];
    let mut c = Cancellation::resume(stored, policy(), Rng::from_seed([1; 32]), keys, now);
    let (sent, out) = run(&mut c, now, &[&code("P002")]);
    assert_eq!(sent[0].body, "FIRSTKEY|20261121|N");
    assert!(out.unwrap_err().is_ambiguous());
}

#[test]
fn a_failed_status_query_is_status_unknown_and_each_resend_has_a_new_key() {
    let now = afternoon();
    let mut c = Cancellation::new(Fake::query(now), policy(), Rng::from_seed([4; 32]));
    let (sent, out) = run(&mut c, now, &[&timeout, &http500, &timeout, &timeout]);
    assert_eq!(sent.len(), 4);
    let keys: std::collections::HashSet<&str> = sent.iter().map(Sent::key).collect();
    assert_eq!(keys.len(), 4, "a new key per query");
    assert!(matches!(out.unwrap_err(), Error::StatusUnknown { .. }));
    // A refused query (HTTP 4xx) is also only "status unknown".
    let mut c = Cancellation::new(Fake::query(now), policy(), Rng::from_seed([4; 32]));
    let (_, out) = run(
        &mut c,
        now,
        &[&|_: &Sent| Reply::Status(404, String::new())],
    );
    assert!(matches!(out.unwrap_err(), Error::StatusUnknown { .. }));
    // An answer of the query comes back as it is (any date: the status may be old).
    let mut c = Cancellation::new(Fake::query(now), policy(), Rng::from_seed([4; 32]));
    let old = now - Duration::from_secs(86_400);
    let (_, out) = run(
        &mut c,
        now,
        &[&move |s: &Sent| answer(s, PG, 1000, old, "C")],
    );
    assert!(out.is_ok());
}

#[test]
fn undelivered_is_resent_and_then_reported_as_not_cancelled() {
    let mut c = cancellation(Channel::Generic, late_evening(), policy());
    let (sent, out) = run(
        &mut c,
        late_evening(),
        &[&refused, &refused, &refused, &refused],
    );
    assert_eq!(sent.len(), 4);
    // The key never reached KICC so it is kept; the date follows the Korea day.
    assert!(sent.iter().all(|s| s.body.starts_with("FIRSTKEY|")));
    assert!(sent[1].body.ends_with("20261122|N"));
    let err = out.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.certainly_not_cancelled());
}

#[test]
fn exhausted_after_a_possible_delivery_is_ambiguous() {
    let mut c = cancellation(Channel::Alipay, late_evening(), policy());
    let (sent, out) = run(
        &mut c,
        late_evening(),
        &[&timeout, &refused, &refused, &refused],
    );
    assert_eq!(sent.len(), 4);
    match out.unwrap_err() {
        Error::Ambiguous {
            attempts,
            shop_transaction_id,
            ..
        } => {
            assert_eq!(attempts, 4);
            assert_eq!(shop_transaction_id, "FIRSTKEY");
        }
        other => panic!("{other:?}"),
    }
    let mut c = cancellation(Channel::Alipay, late_evening(), policy());
    let a211 = code("A211");
    let (_, out) = run(&mut c, late_evening(), &[&a211, &a211, &a211, &a211]);
    assert_eq!(out.unwrap_err().res_cd(), Some("A211"));
}

#[test]
fn http_statuses() {
    let not_found_page = |_: &Sent| Reply::Status(404, String::new());
    let mut c = cancellation(Channel::WeChat, afternoon(), policy());
    let (sent, out) = run(&mut c, afternoon(), &[&http500, &ok]);
    assert_eq!((sent.len(), out.is_ok()), (2, true));
    let mut c = cancellation(Channel::WeChat, afternoon(), policy());
    let (_, out) = run(&mut c, afternoon(), &[&not_found_page]);
    assert!(matches!(out.unwrap_err(), Error::Transport { .. }));
    let mut c = cancellation(Channel::WeChat, afternoon(), policy());
    let (_, out) = run(&mut c, afternoon(), &[&timeout, &not_found_page]);
    assert!(out.unwrap_err().is_ambiguous());
    // HTTP 200 without a resCd: outcome unknown, retried.
    let mut c = cancellation(Channel::Alipay, afternoon(), policy());
    let html = |_: &Sent| Reply::Status(200, "<html>".into());
    let (sent, out) = run(&mut c, afternoon(), &[&html, &ok]);
    assert_eq!((sent.len(), out.is_ok()), (2, true));
}

#[test]
fn backoff_grows_with_jitter_and_respects_the_deadline() {
    let pol = policy()
        .to_builder()
        .max_attempts(10)
        .initial_backoff(Duration::from_secs(1))
        .max_backoff(Duration::from_secs(4))
        .deadline(Duration::from_secs(8))
        .build()
        .unwrap();
    let mut c = cancellation(Channel::Alipay, afternoon(), pol.clone());
    let script: Vec<&dyn Fn(&Sent) -> Reply> = vec![&timeout; 4];
    let (sent, out) = run(&mut c, afternoon(), &script);
    assert!(out.unwrap_err().is_ambiguous());
    let elapsed = sent.last().unwrap().at.duration_since(sent[0].at).unwrap();
    assert!(elapsed <= Duration::from_secs(8), "{elapsed:?}");
    let mut rng = Rng::from_seed([9; 32]);
    for attempt in 1..8 {
        let d = pol.backoff(attempt, &mut rng);
        let step = Duration::from_secs(1 << (attempt - 1)).min(pol.max_backoff());
        assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
    }
    let delays: Vec<_> = (0..5).map(|_| pol.backoff(3, &mut rng)).collect();
    assert!(
        delays.windows(2).any(|w| w[0] != w[1]),
        "no jitter: {delays:?}"
    );
}

#[test]
fn extreme_policies_do_not_panic() {
    let pol = policy()
        .to_builder()
        .deadline(Duration::MAX)
        .max_backoff(Duration::MAX)
        .initial_backoff(Duration::MAX)
        .processing_bound(Duration::MAX)
        .clock_skew(Duration::MAX)
        .max_attempts(2)
        .build()
        .unwrap();
    let mut c = cancellation(Channel::Alipay, afternoon(), pol.clone());
    let start = Now::new(Instant::now(), afternoon());
    assert!(matches!(c.poll(start), Action::Send(_)));
    c.on_delivery(Delivery::Unknown { reason: "t" }, start);
    // A backoff past the end of the clock: stop with the outcome unknown, no panic.
    match c.poll(start) {
        Action::WaitUntil(_) | Action::Done(Err(Error::Ambiguous { .. })) => {}
        other => panic!("{other:?}"),
    }
    let mut c = cancellation(Channel::Generic, afternoon(), pol);
    assert!(matches!(c.poll(start), Action::Send(_)));
    c.on_delivery(Delivery::Unknown { reason: "t" }, start);
    assert!(matches!(
        c.poll(start),
        Action::WaitUntil(_) | Action::Send(_)
    ));
}

#[test]
fn outcome_is_returned_once_and_deliveries_out_of_turn_are_ignored() {
    let now = Now::new(Instant::now(), afternoon());
    let mut c = cancellation(Channel::Alipay, afternoon(), policy());
    let body = format!(
        r#"{{"resCd":"0000","shopTransactionId":"FIRSTKEY","pgCno":"{PG}","amount":1000}}"#
    );
    let d = Delivery::Response {
        status: 200,
        body: body.as_bytes(),
    };
    c.on_delivery(d, now); // nothing in flight: ignored
    assert!(matches!(c.poll(now), Action::Send(_)));
    assert!(matches!(c.poll(now), Action::AwaitDelivery));
    c.on_delivery(d, now);
    assert!(matches!(c.poll(now), Action::Done(Ok(_))));
    assert!(matches!(
        c.poll(now),
        Action::Done(Err(Error::Ambiguous { .. }))
    ));
    assert_eq!(c.attempts(), 1);
}
