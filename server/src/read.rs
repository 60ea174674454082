//! The read API: entries (the CLI's query filters, forced to the token's tenant), the
//! latest checkpoint and verifier key, inclusion and consistency proofs (the bundles of
//! `vellum prove`, checked by `vellum check-proof`), and verification.

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use vellum::LedgerError;
use vellum::ledger::bundle::ProofBundle;
use vellum::ledger::query::{Page, Query as LedgerQuery};

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::state::App;

/// The query string of `GET /v1/entries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesParams {
    tenant: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// Comma-separated kinds.
    kind: Option<String>,
    correlation_id: Option<String>,
    chain_id: Option<String>,
    actor: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /v1/entries`: `{"entries": [...], "next_cursor": …}` of the caller's tenant. A
/// page ends at `limit` entries or once its entries reach `max-page-bytes`, whichever comes
/// first; the cursor continues after it. Payloads are the stored JSON text, byte for byte.
pub async fn entries(
    State(app): State<App>,
    Caller(tenant): Caller,
    params: Result<Query<EntriesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if params.tenant.as_ref().is_some_and(|t| *t != tenant) {
        return Err(ApiError::forbidden(format!(
            "this token reads only tenant `{tenant}`"
        )));
    }
    let mut query = LedgerQuery {
        tenant: Some(tenant),
        since: params.since,
        until: params.until,
        kinds: params
            .kind
            .map(|k| k.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        correlation_id: params.correlation_id,
        chain_id: params.chain_id,
        actor: params.actor,
        after_seq: None,
        limit: params.limit.unwrap_or(100),
        max_bytes: Some(app.max_page_bytes),
    };
    if let Some(cursor) = &params.cursor {
        query = query.with_cursor(cursor).map_err(ApiError::bad_request)?;
    }
    let retry = app.retry_after;
    let page = app
        .read(move |sink| {
            sink.ledger()
                .query(&query)
                .map_err(|e| ApiError::ledger(e, retry))
        })
        .await?;
    Ok(Json(page))
}

/// `GET /v1/checkpoint`: the latest signed checkpoint, `{"size", "root", "origin",
/// "time", "note", "cosignatures"}` (the witnesses' signature lines for the note).
pub async fn checkpoint(State(app): State<App>, _: Caller) -> Result<Json<Value>, ApiError> {
    let retry = app.retry_after;
    app.read(move |sink| {
        let ledger = sink.ledger();
        let (checkpoint, note) = ledger
            .checkpoints()
            .map_err(|e| ApiError::ledger(e, retry))?
            .pop()
            .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))?;
        let cosignatures = ledger
            .cosignatures(checkpoint.size)
            .map_err(|e| ApiError::ledger(e, retry))?;
        Ok(Json(json!({
            "size": checkpoint.size,
            "root": checkpoint.root,
            "origin": checkpoint.origin,
            "time": checkpoint.time,
            "note": note,
            "cosignatures": cosignatures,
        })))
    })
    .await
}

/// `GET /v1/key`: the verifier key that checks every checkpoint and proof.
pub async fn key(State(app): State<App>, _: Caller) -> String {
    format!("{}\n", app.sink.ledger().verifier_key())
}

/// The query string of `GET /v1/proof/inclusion/{seq}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    tree_size: Option<u64>,
}

/// `GET /v1/proof/inclusion/{seq}`: the proof bundle of one of the caller's entries. An
/// entry of another tenant is answered exactly like one that does not exist, and before
/// anything is signed. When no checkpoint covers the caller's entry yet, one is signed.
/// The bundle carries the entry as stored, so it hashes to its leaf.
pub async fn inclusion(
    State(app): State<App>,
    Caller(tenant): Caller,
    Path(seq): Path<u64>,
    params: Result<Query<InclusionParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProofBundle>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let retry = app.retry_after;
    app.read(move |sink| {
        let ledger = sink.ledger();
        let not_found = || ApiError::not_found(format!("tenant `{tenant}` has no entry {seq}"));
        // Ownership first, through the tenant's own index: another tenant's entry is never
        // read, and never makes the ledger sign a checkpoint.
        let owned = LedgerQuery {
            tenant: Some(tenant.clone()),
            after_seq: seq.checked_sub(1),
            limit: 1,
            ..LedgerQuery::default()
        };
        let page = ledger
            .query(&owned)
            .map_err(|e| ApiError::ledger(e, retry))?;
        if page.entries.first().map(|e| e.seq) != Some(seq) {
            return Err(not_found());
        }
        let bundle = match ledger.inclusion_bundle(seq, params.tree_size) {
            Err(LedgerError::BadRequest(_)) if params.tree_size.is_none() => {
                ledger
                    .checkpoint()
                    .map_err(|e| ApiError::ledger(e, retry))?;
                ledger.inclusion_bundle(seq, None)
            }
            other => other,
        }
        .map_err(|e| ApiError::ledger(e, retry))?;
        Ok(Json(bundle))
    })
    .await
}

/// The query string of `GET /v1/proof/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    old: u64,
    new: u64,
}

/// `GET /v1/proof/consistency?old=A&new=B`: the bundle proving that checkpoint `A` is a
/// prefix of checkpoint `B` (tree sizes; both must be signed checkpoints).
pub async fn consistency(
    State(app): State<App>,
    _: Caller,
    params: Result<Query<ConsistencyParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProofBundle>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let retry = app.retry_after;
    app.read(move |sink| {
        let bundle = sink
            .ledger()
            .consistency_bundle(params.old, params.new)
            .map_err(|e| ApiError::ledger(e, retry))?;
        Ok(Json(bundle))
    })
    .await
}

/// `POST /v1/verify`: recomputes every leaf, the tree and every checkpoint; `{"ok",
/// "size", "entries_checked", "checkpoints_checked", "findings"}`. It reads the whole
/// ledger, every tenant's entries, so it needs an admin token (403 otherwise), and one runs
/// at a time (429 while another does), on a connection of its own: queries go on meanwhile.
pub async fn verify(State(app): State<App>, _: Admin) -> Result<Json<Value>, ApiError> {
    let permit = app
        .verify_gate
        .try_acquire()
        .map_err(|_| ApiError::busy("a verification is already running", app.retry_after))?;
    let retry = app.retry_after;
    let report = app
        .read(move |sink| {
            sink.ledger()
                .verify_apart(None)
                .map_err(|e| ApiError::ledger(e, retry))
        })
        .await;
    drop(permit);
    let report = report?;
    Ok(Json(json!({
        "ok": report.ok(),
        "size": report.size,
        "entries_checked": report.entries_checked,
        "entries_erased": report.entries_erased,
        "checkpoints_checked": report.checkpoints_checked,
        "findings": report.findings,
    })))
}
