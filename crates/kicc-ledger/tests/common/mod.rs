//! Helpers shared by the store tests: the same scenarios run against every backend.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use kicc_ledger::transition::Planned;
use kicc_ledger::{
    AttemptPlan, AttemptResult, Channel, Currency, Finish, IntentId, IntentParams, IntentSpec,
    LedgerError, NotProcessedProof, OutcomeKind, State, StateKind, Store, TransitionError,
};

pub const TTL: Duration = Duration::from_secs(3600);

pub fn spec(id: &str, channel: Channel, pg: &str, amount: Option<u64>) -> IntentSpec {
    let mut p = IntentParams::new(id, channel, pg);
    p.amount = amount;
    if amount.is_some() && channel != Channel::Generic {
        p.currency = Some(Currency::Usd);
    }
    p.validate().unwrap()
}

pub fn id(s: &str) -> IntentId {
    IntentId::new(s).unwrap()
}

pub fn plan(key: &str) -> AttemptPlan {
    AttemptPlan {
        key: key.into(),
        korea_date: "20261202".into(),
        // Bytes that are not UTF-8 must come back exactly.
        request: [
            b"{\"shopTransactionId\":\"".as_slice(),
            key.as_bytes(),
            b"\"}\xff\x00",
        ]
        .concat(),
    }
}

pub fn result(outcome: OutcomeKind) -> AttemptResult {
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
        detail: "from test".into(),
        outcome,
    }
}

/// The executor's loop once: import, lease, renew, record, "send", record, finish.
pub async fn write_ahead_flow<S: Store>(store: &S) {
    let specs = vec![
        spec("flow-1", Channel::Alipay, "pg-flow", Some(1203)),
        spec("flow-2", Channel::Generic, "pg-flow-2", None),
    ];
    let imported = store.import(specs.clone()).await.unwrap().unwrap();
    assert!(imported.iter().all(|p| matches!(p, Planned::Created(_))));
    // Importing the same file again changes nothing.
    let again = store.import(specs).await.unwrap().unwrap();
    assert!(again.iter().all(|p| matches!(p, Planned::Existing(_))));

    let leased = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(leased.intent.spec.intent_id(), &id("flow-1"));
    assert_eq!(leased.lease.owner, *store.owner());
    let lease = store
        .renew(&leased.lease, Duration::from_secs(40))
        .await
        .unwrap();
    assert!(lease.expires_at >= leased.lease.expires_at);
    let before = store.now().await.unwrap();
    let a = store.record_attempt(&lease, plan("K1")).await.unwrap();
    assert_eq!(a.number, 1);
    // sent_at is on the database's clock, the one `now` reads.
    assert!(a.sent_at >= before && a.sent_at <= store.now().await.unwrap());
    // Durable before sending: a fresh read sees key, date and exact bytes.
    let seen = store.get(&id("flow-1")).await.unwrap().unwrap();
    assert_eq!(seen.attempts.len(), 1);
    assert_eq!(seen.attempts[0].request, plan("K1").request);
    assert_eq!(seen.attempts[0].korea_date, "20261202");
    assert!(seen.attempts[0].result.is_none());
    assert_eq!(seen.state.kind(), StateKind::InFlight);

    store
        .record_result(&lease, 1, result(OutcomeKind::Ambiguous))
        .await
        .unwrap();
    // Wallet resend: identical message.
    assert!(matches!(
        store.record_attempt(&lease, plan("K2")).await,
        Err(LedgerError::Transition(TransitionError::Rule { .. }))
    ));
    store.record_attempt(&lease, plan("K1")).await.unwrap();
    store
        .record_result(&lease, 2, result(OutcomeKind::Succeeded))
        .await
        .unwrap();
    let done = store
        .finish(
            &lease,
            Finish::Succeeded {
                cancel_pg_cno: "C-1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        done.state,
        State::Succeeded {
            cancel_pg_cno: "C-1".into()
        }
    );
    let stored = store.get(&id("flow-1")).await.unwrap().unwrap();
    assert_eq!(stored, done);
    assert_eq!(
        stored.attempts[1].result,
        Some(result(OutcomeKind::Succeeded))
    );

    // Final: never leased again; the same id returns the existing outcome.
    assert!(matches!(
        store.lease(&id("flow-1"), TTL).await,
        Err(LedgerError::Transition(
            TransitionError::AlreadyFinal { .. }
        ))
    ));
    let p = store
        .plan(spec("flow-1", Channel::Alipay, "pg-flow", Some(1203)))
        .await
        .unwrap();
    assert!(matches!(p, Planned::Existing(i) if i.state.kind() == StateKind::Succeeded));
    // Different parameters: a conflict, even though it is final.
    assert!(matches!(
        store
            .plan(spec("flow-1", Channel::Alipay, "pg-flow", Some(1204)))
            .await,
        Err(LedgerError::Transition(TransitionError::Conflict(_)))
    ));

    let l2 = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(l2.intent.spec.intent_id(), &id("flow-2"));
    store
        .finish(
            &l2.lease,
            Finish::NotProcessed(NotProcessedProof::NothingDelivered),
        )
        .await
        .unwrap();
    assert!(store.lease_next(TTL).await.unwrap().is_none());
    let s = store.summary().await.unwrap();
    assert_eq!((s.total, s.succeeded, s.not_processed), (2, 1, 1));
    let listed = store.list(Some(StateKind::Succeeded)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempts.len(), 2);
}

/// Import is all or nothing, and reports every conflict by position.
pub async fn import_conflicts<S: Store>(store: &S) {
    store
        .plan(spec("c-1", Channel::Generic, "pg-c", Some(500)))
        .await
        .unwrap();
    let out = store
        .import(vec![
            spec("c-new", Channel::Generic, "pg-c2", None),
            spec("c-1", Channel::Generic, "pg-c", Some(600)),
            spec("c-1", Channel::Generic, "pg-c", Some(500)),
        ])
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].index, 1);
    assert_eq!(
        out[0].conflict.differences,
        vec![("amount", "500".to_owned(), "600".to_owned())]
    );
    assert!(store.get(&id("c-new")).await.unwrap().is_none());
}

/// Intents on one pg_cno run one at a time, in import order.
pub async fn per_pg_cno_order<S: Store>(store: &S) {
    store
        .import(vec![
            spec("o-a", Channel::Generic, "pg-o", Some(100)),
            spec("o-b", Channel::Generic, "pg-o", Some(100)),
            spec("o-c", Channel::Generic, "pg-o2", None),
        ])
        .await
        .unwrap()
        .unwrap();
    let a = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(a.intent.spec.intent_id(), &id("o-a"));
    let c = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(c.intent.spec.intent_id(), &id("o-c"));
    assert!(store.lease_next(TTL).await.unwrap().is_none());
    assert!(matches!(
        store.lease(&id("o-b"), TTL).await,
        Err(LedgerError::Transition(TransitionError::Blocked { .. }))
    ));
    store.record_attempt(&a.lease, plan("OA1")).await.unwrap();
    store
        .record_result(&a.lease, 1, result(OutcomeKind::Declined))
        .await
        .unwrap();
    store
        .finish(
            &a.lease,
            Finish::Declined {
                res_cd: "R102".into(),
                detail: "no".into(),
            },
        )
        .await
        .unwrap();
    let b = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(b.intent.spec.intent_id(), &id("o-b"));
    // Released with nothing recorded: back to planned, leasable again.
    let r = store.release(&b.lease).await.unwrap();
    assert_eq!(r.state, State::Planned);
    let b2 = store.lease_next(TTL).await.unwrap().unwrap();
    assert_eq!(b2.lease.generation, b.lease.generation + 1);
    // The old lease is fenced off.
    assert!(matches!(
        store.record_attempt(&b.lease, plan("OB1")).await,
        Err(LedgerError::Transition(TransitionError::Fenced { .. }))
    ));
}

/// Two stores (owners) taking leases concurrently: every intent leased exactly once.
pub async fn contention<S: Store + Clone + 'static>(a: S, b: S, n: usize) {
    let specs: Vec<_> = (0..n)
        .map(|i| {
            spec(
                &format!("x-{i}"),
                Channel::Generic,
                &format!("pg-x-{i}"),
                None,
            )
        })
        .collect();
    a.import(specs).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(l) = s.lease_next(TTL).await.unwrap() {
                s.record_attempt(&l.lease, plan(&format!("K-{}", l.intent.spec.intent_id())))
                    .await
                    .unwrap();
                s.record_result(&l.lease, 1, result(OutcomeKind::Succeeded))
                    .await
                    .unwrap();
                s.finish(
                    &l.lease,
                    Finish::Succeeded {
                        cancel_pg_cno: "C".into(),
                    },
                )
                .await
                .unwrap();
                got.push(l.intent.spec.intent_id().clone());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), n, "some intent was leased twice or never");
    assert_eq!(unique.len(), n);
    let s = a.summary().await.unwrap();
    assert_eq!(s.succeeded, n as u64);
}

/// A lease that expires (by the database's clock) is taken over; the old holder is fenced.
pub async fn expiry_and_fencing<S: Store>(a: &S, b: &S) {
    a.plan(spec("f-1", Channel::Wechat, "pg-f", None))
        .await
        .unwrap();
    let short = Duration::from_millis(200);
    let la = a.lease(&id("f-1"), short).await.unwrap();
    a.record_attempt(&la.lease, plan("F1")).await.unwrap();
    // Busy while the lease lives and its owner is alive.
    let taken = loop {
        match b.lease(&id("f-1"), TTL).await {
            Ok(l) => break l,
            Err(LedgerError::Transition(TransitionError::Busy { .. })) => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("unexpected {e}"),
        }
    };
    assert_eq!(taken.lease.generation, la.lease.generation + 1);
    // The new holder sees the unrecorded attempt: it may have been processed.
    assert_eq!(taken.intent.attempts.len(), 1);
    assert!(taken.intent.attempts[0].may_have_been_processed());
    for r in [
        a.record_result(&la.lease, 1, result(OutcomeKind::Succeeded))
            .await
            .map(|_| ()),
        a.renew(&la.lease, Duration::ZERO).await.map(|_| ()),
        a.finish(
            &la.lease,
            Finish::Unknown {
                detail: "late".into(),
            },
        )
        .await
        .map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(LedgerError::Transition(TransitionError::Fenced { .. }))
            ),
            "{r:?}"
        );
    }
    // The new holder must settle the orphan attempt before anything else.
    assert!(b.record_attempt(&taken.lease, plan("F1")).await.is_err());
    b.record_result(&taken.lease, 1, result(OutcomeKind::Ambiguous))
        .await
        .unwrap();
    b.finish(
        &taken.lease,
        Finish::Unknown {
            detail: "owner lost".into(),
        },
    )
    .await
    .unwrap();
    let rec = b.recoverable().await.unwrap();
    assert!(rec.iter().any(|i| i.spec.intent_id() == &id("f-1")));
}

/// Notices are stored before acknowledgement and found by (pg_cno, cancel_pg_cno), also
/// when they arrived before the acceptance was recorded.
pub async fn notices_flow<S: Store>(store: &S) {
    let early = store
        .record_notice("pg-w", "C-9", b"{\"early\":true}".to_vec())
        .await
        .unwrap();
    assert!(early.1.is_none());
    assert_eq!(early.0.body, b"{\"early\":true}");
    store
        .plan(spec("w-1", Channel::Wechat, "pg-w", None))
        .await
        .unwrap();
    let l = store.lease_next(TTL).await.unwrap().unwrap();
    store.record_attempt(&l.lease, plan("W1")).await.unwrap();
    store
        .record_result(&l.lease, 1, result(OutcomeKind::Pending))
        .await
        .unwrap();
    store
        .finish(
            &l.lease,
            Finish::Pending {
                cancel_pg_cno: "C-9".into(),
            },
        )
        .await
        .unwrap();
    let late = store
        .record_notice("pg-w", "C-9", b"{\"late\":true}".to_vec())
        .await
        .unwrap();
    let matched = late.1.expect("the notice names the accepted cancel");
    assert_eq!(matched.spec.intent_id(), &id("w-1"));
    assert_eq!(matched.state.kind(), StateKind::Pending);
    // A notice changes nothing by itself.
    assert_eq!(
        store.get(&id("w-1")).await.unwrap().unwrap().state.kind(),
        StateKind::Pending
    );
    let all = store.notices("pg-w", "C-9").await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].body, b"{\"early\":true}");
    assert_eq!(all[1].body, b"{\"late\":true}");
    assert!(all[0].id < all[1].id);
    assert!(store.notices("pg-w", "C-other").await.unwrap().is_empty());
    assert!(matches!(
        store.record_notice("", "C-9", Vec::new()).await,
        Err(LedgerError::Transition(TransitionError::Invalid(_)))
    ));
    assert!(matches!(
        store
            .record_notice("pg-w", "C-9", vec![b'x'; kicc_ledger::MAX_NOTICE_BYTES + 1])
            .await,
        Err(LedgerError::Transition(TransitionError::Invalid(_)))
    ));
}

/// The last result and the outcome in one transaction: a refused outcome writes neither.
pub async fn finish_with_result_is_all_or_nothing<S: Store>(store: &S) {
    store
        .plan(spec("fwr-1", Channel::Generic, "pg-fwr", None))
        .await
        .unwrap();
    let l = store.lease(&id("fwr-1"), TTL).await.unwrap().lease;
    let a = store.record_attempt(&l, plan("FWR1")).await.unwrap();
    // A decline after an attempt that may have been processed is refused (invariant 8) ...
    let refused = store
        .finish_with_result(
            &l,
            a.number,
            result(OutcomeKind::Ambiguous),
            Finish::Declined {
                res_cd: "R102".into(),
                detail: "no".into(),
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(LedgerError::Transition(TransitionError::Rule { .. }))
        ),
        "{refused:?}"
    );
    // ... and the result was not written either.
    let i = store.get(&id("fwr-1")).await.unwrap().unwrap();
    assert_eq!(i.state.kind(), StateKind::InFlight);
    assert_eq!(i.attempts[0].result, None);
    let i = store
        .finish_with_result(
            &l,
            a.number,
            result(OutcomeKind::Ambiguous),
            Finish::Unknown {
                detail: "timed out".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(i.state.kind(), StateKind::Unknown);
    let stored = store.get(&id("fwr-1")).await.unwrap().unwrap();
    assert_eq!(
        stored.attempts[0].result,
        Some(result(OutcomeKind::Ambiguous))
    );
}

/// `start_next`: the lease and the first attempt in one transaction. The builder sees the
/// intent just leased; the attempt (key, date, exact bytes) is stored with the intent in
/// flight; the lease fences like any other; per-`pg_cno` order holds; a lease shorter than
/// the attempt needs is refused with nothing written.
pub async fn start_next_flow<S: Store>(store: &S) {
    store
        .import(vec![
            spec("s-1", Channel::Alipay, "pg-s", Some(100)),
            spec("s-2", Channel::Alipay, "pg-s", Some(200)),
        ])
        .await
        .unwrap()
        .unwrap();
    let min = Duration::from_secs(40);
    let refused = store
        .start_next(Duration::from_secs(30), min, |_| Some(plan("K-short")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            LedgerError::Transition(TransitionError::LeaseTooShort { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(
        store.get(&id("s-1")).await.unwrap().unwrap().state,
        State::Planned,
        "a refused start wrote nothing"
    );
    let started = store
        .start_next(TTL, min, |i| {
            assert_eq!(i.spec.intent_id().as_str(), "s-1");
            assert_eq!(i.state.kind(), StateKind::InFlight);
            Some(plan(&format!("K-{}", i.spec.intent_id())))
        })
        .await
        .unwrap()
        .expect("s-1 is free");
    let attempt = started.attempt.clone().expect("an attempt");
    assert_eq!(attempt.number, 1);
    let stored = store.get(&id("s-1")).await.unwrap().unwrap();
    assert_eq!(stored.state.kind(), StateKind::InFlight);
    assert_eq!(stored.attempts, vec![attempt.clone()]);
    assert_eq!(stored.attempts[0].request, plan("K-s-1").request);
    assert_eq!(stored, started.intent);
    // s-2 waits for s-1 (same payment).
    assert!(store
        .start_next(TTL, min, |_| Some(plan("K-never")))
        .await
        .unwrap()
        .is_none());
    // The attempt was recorded under the lease: its result and outcome go with it.
    store
        .finish_with_result(
            &started.lease,
            attempt.number,
            result(OutcomeKind::Succeeded),
            Finish::Succeeded {
                cancel_pg_cno: "C-s-1".into(),
            },
        )
        .await
        .unwrap();
    // A builder without a message only leases.
    let bare = store
        .start_next(TTL, min, |_| None)
        .await
        .unwrap()
        .expect("s-2 is free now");
    assert!(bare.attempt.is_none());
    assert_eq!(bare.intent.spec.intent_id().as_str(), "s-2");
    let released = store.release(&bare.lease).await.unwrap();
    assert_eq!(released.state, State::Planned);
    // A lease taken again fences the earlier one.
    let again = store
        .start_next(TTL, min, |_| Some(plan("K-s-2")))
        .await
        .unwrap()
        .unwrap();
    assert!(again.lease.generation > bare.lease.generation);
    let fenced = store
        .record_result(&bare.lease, 1, result(OutcomeKind::Succeeded))
        .await
        .unwrap_err();
    assert!(
        matches!(
            fenced,
            LedgerError::Transition(TransitionError::Fenced { .. })
        ),
        "{fenced:?}"
    );
}

/// Many workers on two connections taking intents with `start_next`: no intent is started
/// twice, every one once.
pub async fn start_contention<S: Store + Clone + 'static>(a: S, b: S, n: usize) {
    let specs: Vec<_> = (0..n)
        .map(|i| {
            spec(
                &format!("y-{i}"),
                Channel::Generic,
                &format!("pg-y-{i}"),
                None,
            )
        })
        .collect();
    a.import(specs).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(st) = s
                .start_next(TTL, Duration::from_secs(40), |i| {
                    Some(plan(&format!("K-{}", i.spec.intent_id())))
                })
                .await
                .unwrap()
            {
                s.finish_with_result(
                    &st.lease,
                    1,
                    result(OutcomeKind::Succeeded),
                    Finish::Succeeded {
                        cancel_pg_cno: "C".into(),
                    },
                )
                .await
                .unwrap();
                got.push(st.intent.spec.intent_id().clone());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), n, "some intent was started twice or never");
    assert_eq!(unique.len(), n);
    assert_eq!(a.summary().await.unwrap().succeeded, n as u64);
}
