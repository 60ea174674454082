//! The committer: puts processed batches back in batch order, turns each emit's outcomes
//! into ledger records (or its error), appends everything that is ready in one durable
//! ledger transaction, and answers the producers. While it waits for the disk, the workers
//! go on with the next batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::error::EmitError;
use super::pipeline::{Processed, Reply};
use crate::chain::Outcome;
use crate::ledger::Ledger;
use crate::ledger::entry::Record;

/// Runs until every worker is gone and every batch is answered.
pub(crate) fn run(ledger: Arc<Ledger>, processed: Receiver<Processed>, window: Receiver<()>) {
    let mut next = 0u64;
    let mut ready: BTreeMap<u64, Processed> = BTreeMap::new();
    while let Ok(batch) = processed.recv() {
        ready.insert(batch.seq, batch);
        ready.extend(processed.try_iter().map(|b| (b.seq, b)));
        let mut group = Vec::new();
        while let Some(batch) = ready.remove(&next) {
            group.push(batch);
            next += 1;
        }
        let batches = group.len();
        if batches > 0 {
            commit(&ledger, group);
        }
        for _ in 0..batches {
            let _ = window.recv();
        }
    }
}

/// An emit waiting for the commit: where to answer, and how many records it added (or why
/// it has none).
type Pending = (Sender<Reply>, Result<usize, EmitError>);

/// Commits the records of every accepted emit of `group` together and answers every emit.
fn commit(ledger: &Ledger, group: Vec<Processed>) {
    let mut records = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    for batch in group {
        for (reply, result) in batch.requests {
            let counted = result.and_then(records_of).map(|mut own| {
                let n = own.len();
                records.append(&mut own);
                n
            });
            pending.push((reply, counted));
        }
    }
    let (mut receipts, failure) = match ledger.append(records) {
        Ok(receipts) => (receipts.into_iter(), None),
        Err(error) => (Vec::new().into_iter(), Some(EmitError::from(error))),
    };
    for (reply, counted) in pending {
        let answer = match (counted, &failure) {
            (Err(error), _) => Err(error),
            (Ok(_), Some(error)) => Err(error.clone()),
            (Ok(n), None) => Ok(receipts.by_ref().take(n).collect()),
        };
        let _ = reply.send(answer);
    }
}

/// The records of one emit, or the rejection of its first refused event (an emit is atomic:
/// one rejected event and nothing of it is recorded).
fn records_of(outcomes: Vec<Outcome>) -> Result<Vec<Record>, EmitError> {
    let batch = outcomes.len() > 1;
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Keep {
                event,
                attestations,
            } => Ok(Record::recorded(event, attestations)),
            Outcome::Drop {
                marker,
                plugin,
                reason,
                attestations,
            } => Ok(Record::dropped(marker, plugin, reason, attestations)),
            Outcome::Reject {
                event_id,
                plugin,
                reason,
                ..
            } => Err(EmitError::Rejected {
                plugin,
                reason: match batch {
                    true => format!("event `{event_id}`: {reason}"),
                    false => reason,
                },
            }),
        })
        .collect()
}
