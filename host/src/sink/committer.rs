//! The committer: puts processed batches back in batch order, appends the records (sealed
//! by the workers) of everything that is ready in one durable ledger transaction, and
//! answers the producers. While it waits for the disk, the workers go on with the next
//! batches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::error::EmitError;
use super::pipeline::{Processed, Reply};
use super::stats::CommitTimes;
use crate::ledger::{Ledger, SealedRequest};

/// Runs until every worker is gone and every batch is answered.
pub(crate) fn run(
    ledger: Arc<Ledger>,
    times: Arc<CommitTimes>,
    processed: Receiver<Processed>,
    window: Receiver<()>,
) {
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
            let started = Instant::now();
            commit(&ledger, group);
            times.observe(started.elapsed());
        }
        for _ in 0..batches {
            let _ = window.recv();
        }
    }
}

/// An emit waiting for the commit: where to answer, and where its receipts will be (the
/// ledger request, the offset and number of its records in it) or why it has none.
type Pending = (Sender<Reply>, Result<(usize, usize, usize), EmitError>);

/// Commits the records of every accepted emit of `group` and answers every emit. Runs of
/// emits without an idempotency key go to the ledger as one request; an emit with a key
/// is a request of its own (the ledger answers a used key from its first append). The
/// ledger writes them in order, most often in one transaction.
fn commit(ledger: &Ledger, group: Vec<Processed>) {
    let mut requests: Vec<SealedRequest> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    for emit in group.into_iter().flat_map(|batch| batch.requests) {
        let slot = emit.records.map(|(own, sealed)| {
            let n = own.len();
            let joins_previous =
                emit.key.is_none() && requests.last().is_some_and(|(_, _, key)| key.is_none());
            if !joins_previous {
                requests.push((Vec::new(), Vec::new(), emit.key));
            }
            let index = requests.len() - 1;
            let (records, seals, _) = &mut requests[index];
            let offset = records.len();
            records.extend(own);
            seals.extend(sealed);
            (index, offset, n)
        });
        pending.push((emit.reply, slot));
    }
    let answers = ledger.append_sealed(requests);
    for (reply, slot) in pending {
        let answer = slot.and_then(|(index, offset, n)| match &answers[index] {
            Ok(receipts) => receipts
                .get(offset..offset + n)
                .map(<[_]>::to_vec)
                .ok_or_else(|| {
                    EmitError::Unavailable("the ledger answered too few receipts".into())
                }),
            Err(error) => Err(EmitError::from(error.clone())),
        });
        let _ = reply.send(answer);
    }
}
