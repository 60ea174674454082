//! What a running sink reports about itself (for a front door's metrics): the queue's depth
//! and how long ledger commits take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the commit-latency buckets, in seconds.
pub const COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters the committer updates; read with [`CommitTimes::snapshot`].
#[derive(Default)]
pub(crate) struct CommitTimes {
    /// One counter per bucket, plus one for larger values.
    buckets: [AtomicU64; COMMIT_BUCKETS.len() + 1],
    micros: AtomicU64,
}

impl CommitTimes {
    /// Records one commit (one ledger round trip of the committer).
    pub(crate) fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = COMMIT_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(COMMIT_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(
            took.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn snapshot(&self) -> CommitLatency {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(COMMIT_BUCKETS.len());
        for (bound, count) in COMMIT_BUCKETS.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.buckets[COMMIT_BUCKETS.len()].load(Ordering::Relaxed);
        CommitLatency {
            buckets,
            count,
            sum_seconds: self.micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram of commit latencies, in the Prometheus shape.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitLatency {
    /// `(upper bound in seconds, commits at or below it)`, cumulative, by bound.
    pub buckets: Vec<(f64, u64)>,
    /// Every commit observed.
    pub count: u64,
    /// Their total duration.
    pub sum_seconds: f64,
}

/// A snapshot of a sink's state.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkStats {
    /// Emits waiting in the queue for the batcher.
    pub queue_depth: usize,
    /// Ledger commit latency (each commit holds every emit ready at the time).
    pub commit_latency: CommitLatency,
}
