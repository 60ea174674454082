//! The batcher: takes emits from the producers' queue in arrival order and gathers them into
//! numbered batches for the workers. It first waits for room in the in-flight window, so
//! that while every worker is busy emits pile up in the queue and the next batch is larger:
//! batches grow with load without a timer.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::pipeline::{Batch, Message, Request};

/// How large a batch may grow, and how long to wait for it to fill.
pub(crate) struct Limits {
    pub(crate) events: usize,
    pub(crate) wait: Duration,
}

/// Runs until [`Message::Close`] (or every producer handle is gone). Emits still queued
/// behind the close are dropped with the queue, so their producers hear that nothing was
/// recorded.
pub(crate) fn run(
    requests: Receiver<Message>,
    workers: Sender<Batch>,
    window: Sender<()>,
    limits: Limits,
) {
    let mut seq = 0;
    let mut carried: Option<Request> = None;
    let mut closing = false;
    while !closing || carried.is_some() {
        if window.send(()).is_err() {
            return;
        }
        let first = match carried.take() {
            Some(request) => request,
            None => match requests.recv() {
                Ok(Message::Emit(request)) => request,
                Ok(Message::Close) | Err(_) => return,
            },
        };
        let mut events = first.events.len();
        let mut batch = vec![first];
        let deadline = Instant::now() + limits.wait;
        while !closing && events < limits.events {
            match next(&requests, limits.wait, deadline) {
                Some(Message::Emit(request)) if events + request.events.len() > limits.events => {
                    carried = Some(request);
                    break;
                }
                Some(Message::Emit(request)) => {
                    events += request.events.len();
                    batch.push(request);
                }
                Some(Message::Close) => closing = true,
                None => break,
            }
        }
        if workers
            .send(Batch {
                seq,
                requests: batch,
            })
            .is_err()
        {
            return;
        }
        seq += 1;
    }
}

/// The next queued message: at once when `wait` is zero, else until `deadline`.
fn next(requests: &Receiver<Message>, wait: Duration, deadline: Instant) -> Option<Message> {
    if wait.is_zero() {
        requests.try_recv().ok()
    } else {
        requests.recv_deadline(deadline).ok()
    }
}
