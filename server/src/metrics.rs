//! Prometheus metrics (`GET /metrics`, text format): what happened to the events, how
//! long requests and ledger commits take, and how full the sink's queue is.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use vellum::EmitError;
use vellum::Sink;
use vellum::ledger::entry::{Disposition, Receipt};

/// Labels of `vellum_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `recorded`, `dropped`, `rejected`, `invalid` or `unavailable`.
    pub outcome: String,
    /// The plugin that dropped or rejected the event; empty otherwise.
    pub plugin: String,
}

/// Labels of the request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's path template, for example `/v1/emit`.
    pub route: String,
}

/// Labels of `vellum_http_responses_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The route's path template.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    /// Request latency per route.
    pub request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Responses per route and status.
    pub responses: Family<ResponseLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics, with the sink's own figures read at each scrape.
    pub fn new(sink: Sink) -> Self {
        let mut registry = Registry::with_prefix("vellum");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events by outcome (recorded, dropped, rejected, invalid, unavailable) and plugin",
            events.clone(),
        );
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency by route",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by route and status",
            responses.clone(),
        );
        registry.register_collector(Box::new(SinkCollector(Arc::new(sink))));
        Self {
            registry,
            events,
            request_seconds,
            responses,
        }
    }

    /// Counts the events of a successful emit.
    pub fn recorded(&self, receipts: &[Receipt]) {
        for receipt in receipts {
            let (outcome, plugin) = match receipt.disposition {
                Disposition::Recorded => ("recorded", ""),
                Disposition::Dropped => ("dropped", receipt.dropped_by.as_deref().unwrap_or("")),
            };
            self.count(outcome, plugin, 1);
        }
    }

    /// Counts the `events` events of a failed emit.
    pub fn failed(&self, error: &EmitError, events: usize) {
        let (outcome, plugin) = match error {
            EmitError::InvalidEvent(_) => ("invalid", ""),
            EmitError::Rejected { plugin, .. } => ("rejected", plugin.as_str()),
            EmitError::Unavailable(_) => ("unavailable", ""),
        };
        self.count(outcome, plugin, events as u64);
    }

    fn count(&self, outcome: &str, plugin: &str, n: u64) {
        self.events
            .get_or_create(&EventLabels {
                outcome: outcome.to_string(),
                plugin: plugin.to_string(),
            })
            .inc_by(n);
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Reads the sink's queue depth and commit latencies at scrape time.
#[derive(Clone)]
struct SinkCollector(Arc<Sink>);

impl std::fmt::Debug for SinkCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkCollector")
    }
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let depth = Gauge::<i64>::default();
        depth.set(stats.queue_depth as i64);
        depth.encode(encoder.encode_descriptor(
            "queue_depth",
            "Emits waiting in the sink's queue",
            None,
            MetricType::Gauge,
        )?)?;
        let effects = self.0.ledger().effect_counts();
        for (name, help, value) in [
            (
                "checkpoints_published",
                "Checkpoints handed to every publisher",
                effects.published,
            ),
            (
                "checkpoint_publish_failures",
                "Publisher calls that failed or passed their deadline",
                effects.publish_failures,
            ),
            (
                "checkpoint_cosignatures",
                "Witness cosignatures collected and stored",
                effects.cosignatures,
            ),
            (
                "checkpoint_cosign_failures",
                "Witness requests that failed, were refused or passed their deadline",
                effects.cosign_failures,
            ),
            (
                "checkpoint_timestamps",
                "RFC 3161 timestamp tokens collected and stored",
                effects.timestamps,
            ),
            (
                "checkpoint_timestamp_failures",
                "Timestamp requests that failed or passed their deadline",
                effects.timestamp_failures,
            ),
            (
                "checkpoint_quorum_misses",
                "Checkpoints not published because their cosignatures missed the quorum",
                effects.quorum_missed,
            ),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        // The encoder wants per-bucket counts, the last one for +Inf.
        let latency = &stats.commit_latency;
        let mut buckets = Vec::with_capacity(latency.buckets.len() + 1);
        let mut below = 0;
        for &(bound, cumulative) in &latency.buckets {
            buckets.push((bound, cumulative - below));
            below = cumulative;
        }
        buckets.push((f64::MAX, latency.count - below));
        encoder
            .encode_descriptor(
                "commit_duration",
                "Ledger commit latency (one commit holds every emit ready at the time)",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(latency.sum_seconds, latency.count, &buckets, None)
    }
}
