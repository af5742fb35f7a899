//! A bounded slice of the soak, for CI: the real clients against the real in-process sandbox.

use std::time::Duration;

use kicc_sandbox::{FaultKind, GENERIC_REVISE_PATH};
use kicc_soak::{run, run_scenarios, Report, RequestKind, Scenario, SoakConfig};

fn config(seed: u64, scenarios: u64, refund_queries: bool) -> SoakConfig {
    SoakConfig {
        seed,
        first: 0,
        scenarios,
        concurrency: 8,
        refund_queries,
        ..SoakConfig::default()
    }
}

fn assert_covered(report: &Report) {
    // The slice is large enough to exercise every channel and the resume path.
    assert_eq!(report.channels.len(), 6, "{report}");
    assert!(report.outcomes.get("ambiguous").copied().unwrap_or(0) > 0);
    assert!(report.outcomes.get("success").copied().unwrap_or(0) > 0);
    assert!(report.resumes.get("success").copied().unwrap_or(0) > 0);
    // WeChat results arrive by notice to the loopback receiver.
    assert!(
        report.wechat_results.get("notice").copied().unwrap_or(0) > 0,
        "{report}"
    );
}

/// Every channel, every fault kind, no generic refund query: no violation at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_without_refund_queries_has_no_violation() {
    let report = run(config(20_261_202, 96, false)).await.unwrap();
    assert_eq!(report.scenarios, 96);
    assert!(report.violations.is_empty(), "{report}");
    assert_covered(&report);
}

/// With refund queries (`refundQueryFlag = "Y"` on resend or on resume), money is never
/// moved twice nor misreported. A refund query the gateway processes as a new cancel answers
/// with that cancel, an answer that by invariant 9 never ties (it cannot be told from an
/// earlier equal refund), so such a request may end unknown with its one cancel made: that is
/// counted as `unprovable_refund_query`, never as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_with_refund_queries_has_no_violation() {
    let report = run(config(7, 64, true)).await.unwrap();
    assert!(report.violations.is_empty(), "{report}");
    assert_covered(&report);
}

/// The checker has teeth: with the SDK's processing bound below the sandbox's stall, a key is
/// looked up before a stalled request is processed, found absent, and a new cancel goes out
/// while the first is still in flight; the soak must report the second cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_bound_shorter_than_the_stall_is_caught() {
    // Generic partial cancels of at most half the balance behind a stalled (timeout, applied
    // at the end of the stall) first attempt, with a second attempt allowed.
    let picked: Vec<Scenario> = (0..20_000)
        .map(|i| Scenario::generate(99, i))
        .filter(|s| {
            let balance = s.amount - s.earlier.iter().sum::<u64>();
            s.method.is_generic()
                && matches!(s.kind, RequestKind::Partial(a) if 2 * a <= balance)
                && s.max_attempts >= 2
                && s.faults.len() == 1
                && s.faults[0].path == GENERIC_REVISE_PATH
                && s.faults[0].kind == FaultKind::Timeout
                && s.faults[0].apply == Some(false)
        })
        .map(|mut s| {
            s.refund_query_on_resend = false;
            s.remain = kicc_soak::Remain::Absent;
            s
        })
        .take(12)
        .collect();
    assert_eq!(picked.len(), 12);
    let mut cfg = config(99, 0, false);
    cfg.timing.sdk_processing_bound = Duration::from_millis(1);
    let report = run_scenarios(cfg, picked).await.unwrap();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.kind == "two_cancels" || v.kind == "success_without_exactly_one_cancel"),
        "{report}"
    );
}
