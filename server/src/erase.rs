//! Forgetting over HTTP: `POST /v1/erase` (admin tokens) and the retention runs of
//! `vellum serve`.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::Deserialize;
use vellum::Sink;
use vellum::ledger::erasure::{EraseReport, EraseRequest, EraseTarget, OnHold, RetentionRule};

use crate::auth::{Admin, Grant};
use crate::error::ApiError;
use crate::native::parse;
use crate::state::App;

/// The body of `POST /v1/erase`: exactly one of `subject` (with `tenant`, only in that
/// tenant), `tenant` or `seqs`, and why.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Erase {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    seqs: Option<Vec<u64>>,
    reason: String,
    #[serde(default)]
    override_hold: bool,
}

/// `POST /v1/erase`: removes the content named, destroys its data keys and appends the
/// signed `vellum.erasure` record (its `by` names the token's tenant) → the report. 409
/// `held` when a legal hold covers it (unless `override_hold`), 400 when nothing matches.
pub async fn erase(
    State(app): State<App>,
    _: Admin,
    Extension(grant): Extension<Grant>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EraseReport>, ApiError> {
    let body: Erase = parse(body?)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("`reason` must say why"));
    }
    let target = match (body.subject, body.tenant, body.seqs) {
        (Some(subject), tenant, None) => EraseTarget::Subject { subject, tenant },
        (None, Some(tenant), None) => EraseTarget::Tenant(tenant),
        (None, None, Some(seqs)) if !seqs.is_empty() => EraseTarget::Entries(seqs),
        _ => {
            return Err(ApiError::bad_request(
                "give one of `subject` (optionally with `tenant`), `tenant` or `seqs`",
            ));
        }
    };
    let request = EraseRequest {
        target,
        reason: body.reason,
        by: format!("admin token of tenant `{}` over HTTP", grant.tenant),
        on_hold: match body.override_hold {
            true => OnHold::Override,
            false => OnHold::Refuse,
        },
    };
    let retry = app.retry_after;
    let report = app
        .read(move |sink| {
            sink.ledger()
                .erase(request)
                .map_err(|e| ApiError::ledger(e, retry))
        })
        .await?;
    Ok(Json(report))
}

/// The retention runs of `vellum serve`: one at start and one every interval, on a thread
/// of their own, until dropped.
pub struct RetentionRuns {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RetentionRuns {
    /// Starts applying `rules` to `sink`'s ledger every `interval` (nothing when there are
    /// no rules).
    pub fn start(sink: Sink, rules: Vec<RetentionRule>, interval: Duration) -> Self {
        if rules.is_empty() {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vellum-retention".into())
            .spawn(move || {
                loop {
                    let now = jiff::Timestamp::now();
                    match sink.ledger().run_retention(&rules, now, "retention") {
                        Ok(r) if r.erased > 0 || r.held > 0 => tracing::info!(
                            "retention: erased {} entries, {} held, records {:?}",
                            r.erased,
                            r.held,
                            r.records
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!("retention run failed (retried next run): {e}"),
                    }
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .map_err(|e| tracing::error!("cannot start the retention thread: {e}"))
            .ok();
        Self {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for RetentionRuns {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
