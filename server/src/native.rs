//! The native write API, mirroring the WIT `sink` interface: `POST /v1/emit`,
//! `/v1/emit-batch` and `/v1/status-change`. A 200 carries receipts, sent only once the
//! entries are durable; any error means nothing was recorded.
//!
//! Every write is idempotent: under the `Idempotency-Key` header when given, else under
//! the event id(s). A retry of the same request gets the first receipts; the same key with
//! other events is a 422. Keys are scoped to the token's tenant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vellum::ledger::idempotency::event_key;
use vellum::sink::STATUS_CHANGED_KIND;
use vellum::{AuditEvent, StatusChange};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{App, claim};

/// The header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /v1/emit`: one event → `{"receipt": …}`.
pub async fn emit(
    State(app): State<App>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let event = parse::<AuditEvent>(body?)?;
    record_one(&app, &tenant, &headers, event).await
}

/// Records one event for `tenant` → `{"receipt": …}`.
async fn record_one(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    event: AuditEvent,
) -> Result<Json<Value>, ApiError> {
    let mut events = vec![event];
    claim(tenant, &mut events)?;
    let key = idempotency_key(headers, &events)?;
    let mut receipts = app.record(tenant, key, events).await?;
    let receipt = receipts
        .pop()
        .ok_or_else(|| ApiError::internal("the sink answered no receipt"))?;
    Ok(Json(json!({ "receipt": receipt })))
}

/// The body of `POST /v1/emit-batch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<AuditEvent>,
}

/// `POST /v1/emit-batch`: `{"events": [...]}` → `{"receipts": [...]}`, all or none.
pub async fn emit_batch(
    State(app): State<App>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Batch { mut events } = parse(body?)?;
    claim(&tenant, &mut events)?;
    let key = idempotency_key(&headers, &events)?;
    let receipts = app.record(&tenant, key, events).await?;
    Ok(Json(json!({ "receipts": receipts })))
}

/// The body of `POST /v1/status-change`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChangeRequest {
    /// The envelope (its `kind`, `subject` and `payload` are replaced; `kind` may be left
    /// out).
    envelope: serde_json::Map<String, Value>,
    change: StatusChange,
}

/// `POST /v1/status-change`: `{"envelope": …, "change": …}` → `{"receipt": …}`: the
/// intent lifecycle shape, recorded as an `intent.status-changed` event.
pub async fn status_change(
    State(app): State<App>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let StatusChangeRequest {
        mut envelope,
        change,
    } = parse(body?)?;
    envelope
        .entry("kind")
        .or_insert_with(|| Value::from(STATUS_CHANGED_KIND));
    let envelope: AuditEvent = serde_json::from_value(Value::Object(envelope))
        .map_err(|e| ApiError::malformed(format!("envelope: {e}")))?;
    let event = change
        .into_event(envelope)
        .map_err(|e| ApiError::emit(e.into(), app.retry_after))?;
    record_one(&app, &tenant, &headers, event).await
}

/// Parses a JSON body, naming the line and column of what is wrong.
pub fn parse<T: DeserializeOwned>(body: Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(&body).map_err(|e| ApiError::malformed(format!("request body: {e}")))
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        use axum::http::StatusCode;
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(rejection.body_text()),
            _ => ApiError::malformed(rejection.body_text()),
        }
    }
}

/// The request's idempotency key: the header, or one derived from the event ids
/// ([`event_key`] for one event, `events:<sha256 of the ids>` for several).
fn idempotency_key(headers: &HeaderMap, events: &[AuditEvent]) -> Result<String, ApiError> {
    if let Some(value) = headers.get(IDEMPOTENCY_KEY) {
        return value.to_str().map(str::to_string).map_err(|_| {
            ApiError::bad_request("the Idempotency-Key header must be visible ASCII")
        });
    }
    Ok(match events {
        [event] => event_key(&event.id),
        _ => {
            let mut ids = Sha256::new();
            for event in events {
                ids.update(event.id.as_bytes());
                ids.update([0]);
            }
            format!("events:{}", hex::encode(ids.finalize()))
        }
    })
}
