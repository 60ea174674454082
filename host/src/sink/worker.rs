//! A chain worker: runs whole batches through its own runner of the shared chain template
//! (its own plugin instances, per tenant) and hands the outcomes to the committer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::error::EmitError;
use super::pipeline::{Batch, Processed};
use crate::chain::ChainTemplate;

/// Runs until the batcher is gone.
pub(crate) fn run(
    template: Arc<ChainTemplate>,
    tenant_instances: usize,
    batches: Receiver<Batch>,
    committer: Sender<Processed>,
) {
    let mut chain = template.runner(tenant_instances);
    while let Ok(Batch { seq, requests }) = batches.recv() {
        let mut sizes = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        let mut events = Vec::with_capacity(requests.iter().map(|r| r.events.len()).sum());
        for request in requests {
            sizes.push(request.events.len());
            replies.push(request.reply);
            events.extend(request.events);
        }
        let requests = match catch_unwind(AssertUnwindSafe(|| chain.apply(events))) {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                replies
                    .into_iter()
                    .zip(sizes)
                    .map(|(reply, n)| (reply, Ok(outcomes.by_ref().take(n).collect())))
                    .collect()
            }
            Err(_) => {
                // A host bug, not a plugin's doing (plugin failures are values). Start over
                // with fresh instances and fail this batch's emits: nothing was recorded.
                tracing::error!("a chain worker panicked; its batch is failed and not recorded");
                chain = template.runner(tenant_instances);
                let error = EmitError::Unavailable(
                    "internal error while running the chain; nothing was recorded".into(),
                );
                replies
                    .into_iter()
                    .map(|r| (r, Err(error.clone())))
                    .collect()
            }
        };
        if committer.send(Processed { seq, requests }).is_err() {
            return;
        }
    }
}
