//! Waiting for the final result of an accepted WeChat Pay cancel, as a sans-IO state machine.
//!
//! KICC only accepts a WeChat Pay cancel; the result comes to `notifyUrl`, and the status
//! query (`find`) answers when no notice arrives. [`ResultWaiter`] decides when to query:
//! not before `first_query_after` (the webhook usually comes first) or `max_wait`, whichever
//! is sooner, then every `query_interval`, and gives up after `max_wait` with
//! [`Error::Pending`], but never before it has asked at least once.
//!
//! Outcomes: only a notice or a status answer with a `resCd` other than `0000` means the
//! cancel failed ([`Error::Declined`]); `TS02`, `TS06` and `TS12` (network cancel, void) mean
//! cancelled; `TS01` when time runs out means pending. A status query that fails says nothing
//! about the cancel: it is asked again, and its failure is never an outcome. With
//! `confirm_notice` (the default) a notice only triggers a status query, whose answer decides:
//! notices are unsigned, so money is not reported as returned on a notice alone.

use std::time::{Duration, Instant};

use kicc_core::webhook::WechatCancelNotice;
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::{Error, GatewayError, TransactionStatus};

use crate::status::FindResponse;

/// How long and how to wait: start from [`WaitPolicy::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use kicc_wechat::WaitPolicy;
///
/// let policy = WaitPolicy::default()
///     .with_first_query_after(Duration::from_secs(5))
///     .with_max_wait(Duration::from_secs(60));
/// assert_eq!(policy.query_interval(), Duration::from_secs(15));
/// assert!(policy.confirm_notice());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    first_query_after: Duration,
    query_interval: Duration,
    max_wait: Duration,
    confirm_notice: bool,
}

impl WaitPolicy {
    /// The same policy, making the first status query this long after acceptance if no
    /// notice came (default 30 s; never later than `max_wait`).
    pub fn with_first_query_after(mut self, after: Duration) -> Self {
        self.first_query_after = after;
        self
    }

    /// The same policy, with later status queries this far apart (default 15 s).
    pub fn with_query_interval(mut self, interval: Duration) -> Self {
        self.query_interval = interval;
        self
    }

    /// The same policy, giving up (with [`Error::Pending`]) after this long (default 5 min).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The same policy, confirming a notice with a status query before reporting the result
    /// (`true`, the default) or trusting the unsigned notice alone (`false`).
    pub fn with_confirm_notice(mut self, confirm: bool) -> Self {
        self.confirm_notice = confirm;
        self
    }

    /// How long after acceptance the first status query is made if no notice came.
    pub fn first_query_after(&self) -> Duration {
        self.first_query_after
    }

    /// How far apart later status queries are.
    pub fn query_interval(&self) -> Duration {
        self.query_interval
    }

    /// How long to wait in all before giving up with [`Error::Pending`].
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Whether a notice is confirmed with a status query before it is reported.
    pub fn confirm_notice(&self) -> bool {
        self.confirm_notice
    }
}

impl Default for WaitPolicy {
    /// First query after 30 s, then every 15 s, for at most 5 minutes; notices confirmed.
    fn default() -> Self {
        WaitPolicy {
            first_query_after: Duration::from_secs(30),
            query_interval: Duration::from_secs(15),
            max_wait: Duration::from_secs(300),
            confirm_notice: true,
        }
    }
}

/// How the result became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultSource {
    /// A webhook notice (confirmed by a status query when `confirm_notice` is set).
    Notice,
    /// A status query, without a notice.
    StatusQuery,
}

/// The final, successful result of a WeChat Pay cancel: the money went back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelResult {
    /// The original payment.
    pub pg_cno: String,
    /// The cancellation.
    pub cancel_pg_cno: String,
    /// TS02 (full), TS06 (partial) or TS12 (void).
    pub status: TransactionStatus,
    /// The cancelled amount as KICC reported it.
    pub amount_info: Option<ResponseAmountInfo>,
    /// How it became known.
    pub source: ResultSource,
}

/// The next thing to do while waiting.
///
/// Deliberately not `#[non_exhaustive]`: a driver must handle every action, and a new one
/// must fail to compile rather than fall into a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitAction {
    /// Wait for a notice (report it with [`ResultWaiter::on_notice`]) until this instant,
    /// then poll again.
    WaitForNotice(Instant),
    /// Send a status query now and report its outcome with [`ResultWaiter::on_status`].
    QueryStatus,
    /// A status query is in flight.
    AwaitStatus,
    /// Finished.
    Done(Result<CancelResult, Error>),
}

/// Waits for one accepted cancellation's result. See the module docs.
#[derive(Debug)]
pub struct ResultWaiter {
    policy: WaitPolicy,
    pg_cno: String,
    cancel_pg_cno: String,
    shop_transaction_id: String,
    deadline: Instant,
    next_query: Instant,
    querying: bool,
    asked: bool,
    notice: Option<WechatCancelNotice>,
    done: Option<Result<CancelResult, Error>>,
    finished: bool,
}

impl ResultWaiter {
    /// Starts waiting at `now` for cancellation `cancel_pg_cno` of `pg_cno`, accepted for the
    /// request keyed `shop_transaction_id`.
    pub fn new(
        pg_cno: &str,
        cancel_pg_cno: &str,
        shop_transaction_id: &str,
        policy: WaitPolicy,
        now: Instant,
    ) -> Self {
        ResultWaiter {
            policy,
            pg_cno: pg_cno.to_owned(),
            cancel_pg_cno: cancel_pg_cno.to_owned(),
            shop_transaction_id: shop_transaction_id.to_owned(),
            deadline: now.checked_add(policy.max_wait).unwrap_or(now),
            next_query: now
                .checked_add(policy.first_query_after.min(policy.max_wait))
                .unwrap_or(now),
            querying: false,
            asked: false,
            notice: None,
            done: None,
            finished: false,
        }
    }

    /// The cancellation waited for.
    pub fn cancel_pg_cno(&self) -> &str {
        &self.cancel_pg_cno
    }

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Instant) -> WaitAction {
        if let Some(done) = self.done.take() {
            self.finished = true;
            return WaitAction::Done(done);
        }
        if self.finished {
            return WaitAction::Done(Err(self.pending()));
        }
        if self.querying {
            return WaitAction::AwaitStatus;
        }
        if now >= self.deadline && self.asked {
            self.finished = true;
            return WaitAction::Done(Err(self.pending()));
        }
        if now >= self.next_query || now >= self.deadline {
            self.querying = true;
            self.asked = true;
            return WaitAction::QueryStatus;
        }
        WaitAction::WaitForNotice(self.next_query.min(self.deadline))
    }

    /// Reports a notice. Notices about other cancellations are ignored (returns `false`).
    pub fn on_notice(&mut self, notice: &WechatCancelNotice, now: Instant) -> bool {
        if notice.cancel_pg_cno != self.cancel_pg_cno || self.finished || self.done.is_some() {
            return false;
        }
        if self.notice.as_ref() == Some(notice) {
            // Already handled (a re-send, or the same notice seen again): nothing new to do.
            return true;
        }
        self.notice = Some(notice.clone());
        if self.policy.confirm_notice {
            // Query now (or as soon as the query in flight returns).
            self.next_query = now;
        } else if notice.is_success() {
            self.done = Some(Ok(CancelResult {
                pg_cno: notice.pg_cno.clone(),
                cancel_pg_cno: notice.cancel_pg_cno.clone(),
                status: TransactionStatus::Cancelled,
                amount_info: notice.amount_info.clone(),
                source: ResultSource::Notice,
            }));
        } else {
            self.done = Some(Err(self.declined_by_notice(notice)));
        }
        true
    }

    /// Reports the outcome of the status query asked for by [`WaitAction::QueryStatus`].
    pub fn on_status(&mut self, outcome: Result<FindResponse, Error>, now: Instant) {
        if !self.querying {
            return;
        }
        self.querying = false;
        self.next_query = now.checked_add(self.policy.query_interval).unwrap_or(now);
        let Ok(found) = outcome else {
            // The query failed; it says nothing about the cancel. Ask again later, within the
            // deadline.
            return;
        };
        if found.cancel_failed() {
            self.done = Some(Err(Error::Declined(
                GatewayError::new(
                    found.res_cd.clone(),
                    found.res_msg.clone(),
                    self.shop_transaction_id.clone(),
                )
                .with_detail(Some(found.detail())),
            )));
            return;
        }
        if found.is_cancelled() {
            let status = found
                .cancel_status
                .clone()
                .unwrap_or(TransactionStatus::Cancelled);
            self.done = Some(Ok(CancelResult {
                pg_cno: self.pg_cno.clone(),
                cancel_pg_cno: self.cancel_pg_cno.clone(),
                status,
                amount_info: found.amount_info,
                source: if self.notice.is_some() {
                    ResultSource::Notice
                } else {
                    ResultSource::StatusQuery
                },
            }));
            return;
        }
        // Not cancelled (TS01): final only if a failure notice already said so.
        if let Some(n) = self.notice.as_ref().filter(|n| !n.is_success()) {
            self.done = Some(Err(self.declined_by_notice(n)));
        }
    }

    fn declined_by_notice(&self, n: &WechatCancelNotice) -> Error {
        Error::Declined(
            GatewayError::new(
                n.res_cd.clone(),
                n.res_msg.clone(),
                self.shop_transaction_id.clone(),
            )
            .with_detail(
                n.res_detail_msg
                    .as_deref()
                    .map(|d| kicc_core::wire::decode_form_value(d).into_owned()),
            ),
        )
    }

    fn pending(&self) -> Error {
        Error::Pending {
            cancel_pg_cno: self.cancel_pg_cno.clone(),
            shop_transaction_id: self.shop_transaction_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(res_cd: &str, cancel: &str) -> WechatCancelNotice {
        WechatCancelNotice::parse(
            format!(r#"{{"resCd":"{res_cd}","resMsg":"m","pgCno":"P1","cancelPgCno":"{cancel}","amountInfo":{{"currency":"KRW","amount":1000}}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    fn found(status: &str) -> FindResponse {
        serde_json::from_str(&format!(
            r#"{{"resCd":"0000","cancelStatus":"{status}","amountInfo":{{"currency":"KRW","totAmount":1000}}}}"#
        ))
        .unwrap()
    }

    fn policy() -> WaitPolicy {
        WaitPolicy {
            first_query_after: Duration::from_secs(10),
            query_interval: Duration::from_secs(5),
            max_wait: Duration::from_secs(30),
            confirm_notice: true,
        }
    }

    #[test]
    fn notice_then_confirming_query() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new("P1", "C1", "K", policy(), t0);
        assert_eq!(
            w.poll(t0),
            WaitAction::WaitForNotice(t0 + Duration::from_secs(10))
        );
        assert!(!w.on_notice(&notice("0000", "OTHER"), t0));
        assert!(w.on_notice(&notice("0000", "C1"), t0 + Duration::from_secs(1)));
        assert_eq!(w.poll(t0 + Duration::from_secs(1)), WaitAction::QueryStatus);
        assert_eq!(w.poll(t0 + Duration::from_secs(1)), WaitAction::AwaitStatus);
        w.on_status(Ok(found("TS01")), t0 + Duration::from_secs(2));
        // The same notice again does not trigger another immediate query.
        assert!(w.on_notice(&notice("0000", "C1"), t0 + Duration::from_secs(2)));
        assert_eq!(
            w.poll(t0 + Duration::from_secs(2)),
            WaitAction::WaitForNotice(t0 + Duration::from_secs(7))
        );
        assert_eq!(w.poll(t0 + Duration::from_secs(7)), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS02")), t0 + Duration::from_secs(7));
        match w.poll(t0 + Duration::from_secs(7)) {
            WaitAction::Done(Ok(r)) => {
                assert_eq!(r.status, TransactionStatus::Cancelled);
                assert_eq!(r.source, ResultSource::Notice);
                assert_eq!(r.amount_info.unwrap().tot_amount, Some(1000));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_notice_then_queries_until_final() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new("P1", "C1", "K", policy(), t0);
        let t = t0 + Duration::from_secs(10);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS01")), t);
        assert_eq!(
            w.poll(t),
            WaitAction::WaitForNotice(t + Duration::from_secs(5))
        );
        let t = t + Duration::from_secs(5);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        w.on_status(
            Err(Error::Transport {
                reason: "x".into(),
                shop_transaction_id: "Q".into(),
            }),
            t,
        );
        let t = t + Duration::from_secs(5);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS06")), t);
        match w.poll(t) {
            WaitAction::Done(Ok(r)) => {
                assert_eq!(r.status, TransactionStatus::PartiallyCancelled);
                assert_eq!(r.source, ResultSource::StatusQuery);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failure_notice_confirmed_by_ts01_is_a_decline() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new("P1", "C1", "K", policy(), t0);
        w.on_notice(&notice("W001", "C1"), t0);
        assert_eq!(w.poll(t0), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS01")), t0);
        match w.poll(t0) {
            WaitAction::Done(Err(Error::Declined(g))) => {
                assert_eq!(
                    (g.res_cd.as_str(), g.shop_transaction_id.as_str()),
                    ("W001", "K")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gives_up_as_pending() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new("P1", "C1", "K", policy(), t0);
        let mut t = t0;
        loop {
            match w.poll(t) {
                WaitAction::WaitForNotice(until) => t = until,
                WaitAction::QueryStatus => w.on_status(Ok(found("TS01")), t),
                WaitAction::AwaitStatus => unreachable!(),
                WaitAction::Done(r) => {
                    assert_eq!(
                        r.unwrap_err(),
                        Error::Pending {
                            cancel_pg_cno: "C1".into(),
                            shop_transaction_id: "K".into()
                        }
                    );
                    break;
                }
            }
        }
        assert_eq!(t, t0 + Duration::from_secs(30));
    }

    #[test]
    fn a_short_wait_still_asks_once_and_reports_what_it_learns() {
        let t0 = Instant::now();
        let short = WaitPolicy {
            max_wait: Duration::from_secs(1),
            ..policy()
        };
        let mut w = ResultWaiter::new("P1", "C1", "K", short, t0);
        // The first query is due at the deadline, not after it.
        assert_eq!(
            w.poll(t0),
            WaitAction::WaitForNotice(t0 + Duration::from_secs(1))
        );
        let t = t0 + Duration::from_secs(1);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS12")), t + Duration::from_secs(1));
        match w.poll(t + Duration::from_secs(1)) {
            WaitAction::Done(Ok(r)) => assert_eq!(r.status, TransactionStatus::NetworkCancelled),
            other => panic!("{other:?}"),
        }
        // Polled only after the deadline: it still asks once before giving up.
        let mut w = ResultWaiter::new("P1", "C1", "K", short, t0);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(w.poll(late), WaitAction::QueryStatus);
        w.on_status(Ok(found("TS01")), late);
        assert!(matches!(
            w.poll(late),
            WaitAction::Done(Err(Error::Pending { .. }))
        ));
    }

    #[test]
    fn a_failed_status_answer_is_the_cancels_failure_but_a_failed_query_is_not() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new("P1", "C1", "K", policy(), t0);
        let t = t0 + Duration::from_secs(10);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        w.on_status(
            Err(Error::StatusUnknown {
                reason: "dropped".into(),
                shop_transaction_id: "Q".into(),
            }),
            t,
        );
        assert!(matches!(w.poll(t), WaitAction::WaitForNotice(_)));
        let t = t + Duration::from_secs(5);
        assert_eq!(w.poll(t), WaitAction::QueryStatus);
        let failed: FindResponse = serde_json::from_str(
            r#"{"resCd":"W001","resMsg":"refused","cancelPgCno":"C1","cancelStatus":"TS01","resDetailMsg":"card+closed%21"}"#,
        )
        .unwrap();
        w.on_status(Ok(failed), t);
        match w.poll(t) {
            WaitAction::Done(Err(Error::Declined(g))) => {
                assert_eq!(g.res_cd, "W001");
                assert_eq!(g.res_detail_msg.as_deref(), Some("card closed!"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unconfirmed_notices_when_asked() {
        let t0 = Instant::now();
        let mut w = ResultWaiter::new(
            "P1",
            "C1",
            "K",
            WaitPolicy {
                confirm_notice: false,
                ..policy()
            },
            t0,
        );
        w.on_notice(&notice("0000", "C1"), t0);
        assert!(matches!(
            w.poll(t0),
            WaitAction::Done(Ok(CancelResult {
                source: ResultSource::Notice,
                ..
            }))
        ));
    }
}
