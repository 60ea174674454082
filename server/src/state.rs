//! What every request handler shares: the sink, the tokens, the metrics, the limits.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use vellum::ledger::entry::Receipt;
use vellum::{AuditEvent, EmitError, Sink};

use crate::auth::Tokens;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Shared>);

/// See [`App`].
pub struct Shared {
    /// The sink every write goes through, and whose ledger every read reads.
    pub sink: Sink,
    /// The known bearer tokens.
    pub tokens: Tokens,
    /// The metrics.
    pub metrics: Metrics,
    /// Authenticated requests served at once.
    pub requests: Arc<Semaphore>,
    /// Requests to the routes that need no token served at once.
    pub public_requests: Arc<Semaphore>,
    /// One full verification at a time.
    pub verify_gate: Semaphore,
    /// `Retry-After` seconds for 429 and 503.
    pub retry_after: u64,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time for a whole request body.
    pub body_read_timeout: Duration,
    /// Byte budget of a page of entries.
    pub max_page_bytes: usize,
    draining: AtomicBool,
}

impl Deref for App {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl App {
    /// The state of a server over `sink` configured by `config`.
    pub fn new(sink: Sink, config: &ServerConfig) -> Self {
        Self(Arc::new(Shared {
            metrics: Metrics::new(sink.clone()),
            sink,
            tokens: Tokens::new(&config.tokens),
            requests: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            public_requests: Arc::new(Semaphore::new(config.max_unauthenticated_requests)),
            verify_gate: Semaphore::new(1),
            retry_after: config.retry_after_secs,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: Duration::from_secs(config.body_read_timeout_secs),
            max_page_bytes: config.max_page_bytes,
            draining: AtomicBool::new(false),
        }))
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the server takes new work.
    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Records `events` for `tenant` atomically under idempotency key `key` (scoped to the
    /// tenant): the sink's receipts once durable, or the error answer. Runs the blocking
    /// emit off the async workers.
    pub async fn record(
        &self,
        tenant: &str,
        key: String,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<Receipt>, ApiError> {
        let app = self.clone();
        let scope = tenant.to_string();
        let count = events.len();
        let result = tokio::task::spawn_blocking(move || {
            app.sink.emit_batch_idempotent(&scope, &key, events)
        })
        .await
        .unwrap_or_else(|e| {
            Err(EmitError::Unavailable(format!(
                "the emit's worker stopped ({e}); nothing is known to be recorded, retry"
            )))
        });
        match result {
            Ok(receipts) => {
                self.metrics.recorded(&receipts);
                Ok(receipts)
            }
            Err(error) => {
                self.metrics.failed(&error, count);
                Err(ApiError::emit(error, self.retry_after))
            }
        }
    }

    /// Runs a blocking ledger read off the async workers.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Sink) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || f(&app.sink))
            .await
            .unwrap_or_else(|e| {
                Err(ApiError::internal(format!(
                    "the read's worker stopped: {e}"
                )))
            })
    }
}

/// Binds every event to the caller's tenant: an event without a tenant gets it, an event
/// naming another tenant is refused (nothing of the request is recorded).
pub fn claim(tenant: &str, events: &mut [AuditEvent]) -> Result<(), ApiError> {
    for event in events.iter_mut() {
        match &event.tenant {
            None => event.tenant = Some(tenant.to_string()),
            Some(claimed) if claimed == tenant => {}
            Some(claimed) => {
                return Err(ApiError::forbidden(format!(
                    "event `{}` names tenant `{claimed}`, but this token writes only `{tenant}`; \
                     nothing was recorded",
                    event.id
                )));
            }
        }
    }
    Ok(())
}
