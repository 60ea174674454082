//! Vellum as a drop-in audit boundary for three agent runtimes, each over [`Sink`] — so
//! audit is mandatory (an error reaches the caller), batches are atomic, and no event is
//! ever skipped:
//!
//! - [`intent`]: the intent lifecycle sink (CCOS `IntentEventSink`): a status change is
//!   durably recorded or the transition fails;
//! - [`experience`]: the experience store (Converge): typed event envelopes, atomic batch
//!   appends, queries by tenant, time range, kind, correlation and chain, streaming replay;
//! - [`kernel`]: the kernel event bus (Oxios): its audit mapping, a subscriber that applies
//!   backpressure instead of skipping, and gap markers that audit any loss of the bus itself.
//!
//! [`Sink`]: vellum::Sink

pub mod experience;
pub mod intent;
pub mod kernel;

use std::sync::atomic::{AtomicU64, Ordering};

use vellum::LedgerError;
use vellum::ledger::Ledger;
use vellum::ledger::entry::Entry;
use vellum::ledger::query::{MAX_LIMIT, Query};

/// A process-unique id for events the boundaries create themselves: `prefix`, the current
/// time in nanoseconds and a counter.
fn new_event_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}:{}:{n}", jiff::Timestamp::now().as_nanosecond())
}

/// When `entry`'s content was erased: `Some(the erasure record, if one covers it)`.
fn erased_by(entry: &Entry) -> Option<Option<u64>> {
    entry
        .seal
        .as_ref()
        .and_then(|s| s.erased.as_ref())
        .map(|e| e.record)
}

/// Every entry matching `query`, page by page (up to `limit` in all when given), by
/// sequence number.
fn query_all(
    ledger: &Ledger,
    mut query: Query,
    limit: Option<usize>,
    mut keep: impl FnMut(&Entry) -> bool,
) -> Result<Vec<Entry>, LedgerError> {
    let mut found = Vec::new();
    query.limit = MAX_LIMIT;
    loop {
        let page = ledger.query(&query)?;
        for entry in page.entries {
            if keep(&entry) {
                found.push(entry);
                if limit.is_some_and(|l| found.len() >= l) {
                    return Ok(found);
                }
            }
        }
        match page.next_cursor {
            Some(cursor) => {
                query = query
                    .with_cursor(&cursor)
                    .map_err(LedgerError::BadRequest)?
            }
            None => return Ok(found),
        }
    }
}
