//! A chain worker: runs whole batches through its runner of the shared chain template
//! (plugin instances checked out per tenant) and hands the outcomes to the committer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender};

use super::error::EmitError;
use super::pipeline::{Batch, Processed, ProcessedEmit};
use crate::chain::Chain;

/// Runs until the batcher is gone.
pub(crate) fn run(mut chain: Chain, batches: Receiver<Batch>, committer: Sender<Processed>) {
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
                        outcomes: Ok(outcomes.by_ref().take(n).collect()),
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
                        outcomes: Err(error.clone()),
                    })
                    .collect()
            }
        };
        if committer.send(Processed { seq, requests }).is_err() {
            return;
        }
    }
}
