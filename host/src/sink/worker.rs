//! A chain worker: runs whole batches through its runner of the shared chain template
//! (plugin instances checked out per tenant), turns each emit's outcomes into ledger
//! records and seals their content (here, in parallel, not on the ledger's single writer),
//! and hands them to the committer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender};

use super::error::EmitError;
use super::pipeline::{Batch, Processed, ProcessedEmit};
use crate::chain::{Chain, Outcome};
use crate::ledger::Ledger;
use crate::ledger::entry::Record;

/// Runs until the batcher is gone.
pub(crate) fn run(
    mut chain: Chain,
    ledger: &Ledger,
    batches: Receiver<Batch>,
    committer: Sender<Processed>,
) {
    while let Ok(Batch { seq, requests }) = batches.recv() {
        let mut sizes = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        let mut events = Vec::with_capacity(requests.iter().map(|r| r.events.len()).sum());
        for request in requests {
            sizes.push(request.events.len());
            replies.push((request.reply, request.key));
            events.extend(request.events);
        }
        let requests = match catch_unwind(AssertUnwindSafe(|| chain.apply(events))) {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                replies
                    .into_iter()
                    .zip(sizes)
                    .map(|((reply, key), n)| ProcessedEmit {
                        reply,
                        key,
                        records: records_of(outcomes.by_ref().take(n).collect()).and_then(
                            |records| {
                                let sealed = ledger.seal(&records).map_err(EmitError::from)?;
                                Ok((records, sealed))
                            },
                        ),
                    })
                    .collect()
            }
            Err(_) => {
                // A host bug, not a plugin's doing (plugin failures are values). The instances
                // it held were dropped with the panic; fail this batch's emits: nothing of
                // them was recorded.
                tracing::error!("a chain worker panicked; its batch is failed and not recorded");
                let error = EmitError::Unavailable(
                    "internal error while running the chain; nothing was recorded".into(),
                );
                replies
                    .into_iter()
                    .map(|(reply, key)| ProcessedEmit {
                        reply,
                        key,
                        records: Err(error.clone()),
                    })
                    .collect()
            }
        };
        if committer.send(Processed { seq, requests }).is_err() {
            return;
        }
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
