//! Intents by state, through the `metrics` facade (feature `metrics`; a no-op without it).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `kicc_ledger_intents` | gauge | `state`: `planned`, `in_flight`, `succeeded`, `declined`, `not_processed`, `unknown`, `pending` |
//!
//! The gauge is set from the store's own counts ([`crate::Store::summary`]) by
//! [`publish`]: [`crate::Ledger::run_batch`] publishes when it starts and when it ends, and a
//! service calls [`crate::Ledger::publish_metrics`] on its own schedule. No label carries an
//! intent id, a key or a `pgCno`.

use crate::store::Summary;

/// The gauge's name.
pub const INTENTS: &str = "kicc_ledger_intents";

/// Each state's label and its count in `s`.
pub fn by_state(s: &Summary) -> [(&'static str, u64); 7] {
    [
        ("planned", s.planned),
        ("in_flight", s.in_flight),
        ("succeeded", s.succeeded),
        ("declined", s.declined),
        ("not_processed", s.not_processed),
        ("unknown", s.unknown),
        ("pending", s.pending),
    ]
}

/// Sets `kicc_ledger_intents{state}` to the counts in `s`.
#[cfg(feature = "metrics")]
pub fn publish(s: &Summary) {
    for (state, count) in by_state(s) {
        // Counts stay far below 2^53, where f64 is exact.
        metrics::gauge!(INTENTS, "state" => state).set(count as f64);
    }
}

/// Sets `kicc_ledger_intents{state}` to the counts in `s` (no-op: feature `metrics` is off).
#[cfg(not(feature = "metrics"))]
pub fn publish(_s: &Summary) {}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn every_state_is_a_gauge_labelled_by_state_only() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let summary = Summary {
            total: 10,
            succeeded: 4,
            declined: 1,
            not_processed: 1,
            unknown: 2,
            pending: 1,
            in_flight: 1,
            planned: 0,
        };
        metrics::with_local_recorder(&recorder, || publish(&summary));
        let mut seen: Vec<(String, f64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key().clone();
                assert_eq!(key.name(), INTENTS);
                let labels: Vec<_> = key.labels().collect();
                assert_eq!(labels.len(), 1, "one label, the state");
                assert_eq!(labels[0].key(), "state");
                let DebugValue::Gauge(v) = value else {
                    panic!("not a gauge: {value:?}");
                };
                (labels[0].value().to_owned(), v.into_inner())
            })
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [
                ("declined".to_owned(), 1.0),
                ("in_flight".to_owned(), 1.0),
                ("not_processed".to_owned(), 1.0),
                ("pending".to_owned(), 1.0),
                ("planned".to_owned(), 0.0),
                ("succeeded".to_owned(), 4.0),
                ("unknown".to_owned(), 2.0),
            ]
        );
    }
}
