//! The load benchmark counts only real successes: every contender cancels a fresh payment,
//! and reports a declined cancel (here: a reused key) as a failure, not as a fast success.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::net::SocketAddr;
use std::sync::Arc;

use kicc_bench::{run, Clients, Contender, Job};
use kicc_sandbox::{Channel, Currency, Sandbox, SandboxConfig, DEFAULT_SECRET_KEY};

#[test]
fn every_contender_cancels_and_reports_a_decline_as_an_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sandbox = Sandbox::start(addr, SandboxConfig::default())
            .await
            .expect("sandbox starts");
        let clients = Arc::new(
            Clients::new(
                &sandbox.base_url(),
                sandbox.mall_id(),
                DEFAULT_SECRET_KEY,
                8,
            )
            .expect("clients build"),
        );
        let mut serial = 0;
        for who in Contender::ALL {
            let mut jobs: Vec<Job> = Vec::new();
            for _ in 0..5 {
                let payment = sandbox
                    .create_payment(Channel::Alipay, 10_000, Currency::Krw)
                    .expect("payment");
                serial += 1;
                jobs.push(
                    clients
                        .job(who, payment.pg_cno, format!("KT{serial:08}"))
                        .expect("job"),
                );
            }
            let r = run(Arc::clone(&clients), who, Arc::new(jobs.clone()), 2).await;
            assert_eq!(r.errors, 0, "{}: {:?}", who.name(), r.first_error);
            assert_eq!(r.latencies.len(), 5, "{}", who.name());
            assert_eq!(
                r.client_times.len(),
                if who == Contender::Sdk { 5 } else { 0 },
                "{}",
                who.name()
            );
            for job in &jobs {
                let state = sandbox.payment(&job.pg_cno).expect("payment exists");
                assert_eq!(
                    state.status_code,
                    "TS02",
                    "{} left {}",
                    who.name(),
                    job.pg_cno
                );
            }

            // The same key again (a new payment, but `shopTransactionId` already used today):
            // the sandbox declines it, and the contender must say so.
            let payment = sandbox
                .create_payment(Channel::Alipay, 10_000, Currency::Krw)
                .expect("payment");
            let reused = clients
                .job(who, payment.pg_cno, jobs[0].key.clone())
                .expect("job");
            let r = run(Arc::clone(&clients), who, Arc::new(vec![reused]), 1).await;
            assert_eq!(
                r.errors,
                1,
                "{} took a declined cancel for a success",
                who.name()
            );
            assert!(r.latencies.is_empty());
        }
        sandbox.shutdown().await;
    });
}
