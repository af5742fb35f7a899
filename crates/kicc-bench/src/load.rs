//! Sending a batch of jobs at a fixed concurrency and timing each request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::contenders::{Clients, Contender, Job};

/// What one batch measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Each successful request's latency (send to response read and checked).
    pub latencies: Vec<Duration>,
    /// From the first request's start to the last one's end.
    pub wall: Duration,
    /// Requests that failed.
    pub errors: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// SDK only: per request, the latency minus the transport's time (the SDK's own work:
    /// validate, sign, serialize, drive, read the answer), as it runs under load.
    pub client_times: Vec<Duration>,
}

/// Sends every job in `jobs` as `who`, `concurrency` at a time (that many tasks, each taking
/// the next job as soon as its previous one is done).
pub async fn run(
    clients: Arc<Clients>,
    who: Contender,
    jobs: Arc<Vec<Job>>,
    concurrency: usize,
) -> RunResult {
    let next = Arc::new(AtomicUsize::new(0));
    let per_task = jobs.len() / concurrency.max(1) + 1;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (clients, jobs, next) = (Arc::clone(&clients), Arc::clone(&jobs), Arc::clone(&next));
        tasks.spawn(async move {
            let mut out = RunResult {
                latencies: Vec::with_capacity(per_task),
                ..RunResult::default()
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let t0 = Instant::now();
                match clients.cancel(who, job).await {
                    Ok(transport) => {
                        let latency = t0.elapsed();
                        out.latencies.push(latency);
                        if let Some(t) = transport {
                            out.client_times.push(latency.saturating_sub(t));
                        }
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        });
    }
    let mut total = RunResult::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(part) => {
                total.latencies.extend(part.latencies);
                total.client_times.extend(part.client_times);
                total.errors += part.errors;
                if total.first_error.is_none() {
                    total.first_error = part.first_error;
                }
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    total.wall = start.elapsed();
    total
}
