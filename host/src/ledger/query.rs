//! Ledger queries: filters, ordering by sequence number, limit and an opaque cursor.

use jiff::Timestamp;
use serde::Serialize;

use super::entry::Entry;

/// Largest page a query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Filters over the ledger; all given filters must match. Results are ordered by sequence
/// number.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only events that occurred at or after this time.
    pub since: Option<Timestamp>,
    /// Only events that occurred before this time.
    pub until: Option<Timestamp>,
    /// Only these action kinds (any of them); empty means all.
    pub kinds: Vec<String>,
    /// Only this correlation id.
    pub correlation_id: Option<String>,
    /// Only this chain id.
    pub chain_id: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only entries after this sequence number (set from a cursor).
    pub after_seq: Option<u64>,
    /// At most this many entries (1..=[`MAX_LIMIT`]).
    pub limit: usize,
    /// End the page once its entries reach this many bytes (see [`Entry::size_hint`]); the
    /// page still holds at least one entry, and its cursor continues after the last.
    /// `None`: only `limit` bounds the page.
    pub max_bytes: Option<usize>,
}

/// One page of results.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The matching entries, by sequence number.
    pub entries: Vec<Entry>,
    /// Pass to [`Query::with_cursor`] for the next page; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

/// Prefix of cursors of this format.
const CURSOR_PREFIX: &str = "v1.";

impl Query {
    /// Continues after a cursor returned in a previous [`Page`]. Sequence numbers are
    /// stored as signed 64-bit integers, so a cursor past `i64::MAX` is refused rather than
    /// wrapped to the start.
    pub fn with_cursor(mut self, cursor: &str) -> Result<Self, String> {
        let seq = cursor
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .filter(|&seq| i64::try_from(seq).is_ok())
            .ok_or_else(|| format!("invalid cursor `{cursor}`"))?;
        self.after_seq = Some(seq);
        Ok(self)
    }

    /// Checks the query's bounds.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {}",
                self.limit
            ));
        }
        if self.max_bytes == Some(0) {
            return Err("max_bytes must be at least 1".to_string());
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(format!(
                "the time range is empty: {since} is not before {until}"
            ));
        }
        Ok(())
    }
}

/// Collects the entries of one page from `rows` (in sequence order): at most `query.limit`,
/// and none after the one that reaches `query.max_bytes`. Reading stops there, so a store
/// that streams its rows never holds more than one page.
pub(crate) fn collect_page<E>(
    query: &Query,
    rows: impl Iterator<Item = Result<Entry, E>>,
) -> Result<Page, E> {
    let (mut entries, mut bytes, mut full) = (Vec::new(), 0usize, false);
    for row in rows.take(query.limit) {
        let entry = row?;
        bytes = bytes.saturating_add(entry.size_hint());
        entries.push(entry);
        if entries.len() == query.limit || query.max_bytes.is_some_and(|max| bytes >= max) {
            full = true;
            break;
        }
    }
    Ok(Page::new(entries, full))
}

impl Page {
    /// A page of `entries`; `full` when more may follow (the limit or the byte budget ended
    /// it).
    pub(crate) fn new(entries: Vec<Entry>, full: bool) -> Self {
        let next_cursor = full
            .then(|| {
                entries
                    .last()
                    .map(|e| format!("{CURSOR_PREFIX}{:x}", e.seq))
            })
            .flatten();
        Self {
            entries,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let q = Query::default().with_cursor("v1.ff").unwrap();
        assert_eq!(q.after_seq, Some(255));
        assert!(Query::default().with_cursor("ff").is_err());
        assert!(Query::default().with_cursor("v1.zz").is_err());
        // Past i64::MAX: refused, never wrapped to a negative sequence number.
        assert!(Query::default().with_cursor("v1.7fffffffffffffff").is_ok());
        let err = Query::default()
            .with_cursor("v1.8000000000000000")
            .unwrap_err();
        assert!(err.contains("invalid cursor"), "{err}");
    }

    #[test]
    fn limits_and_ranges_are_checked() {
        assert!(
            Query {
                limit: 0,
                ..Query::default()
            }
            .validate()
            .is_err()
        );
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let q = Query {
            limit: 5,
            since: Some(t),
            until: Some(t),
            ..Query::default()
        };
        assert!(q.validate().is_err());
    }
}
