//! OTLP/HTTP receivers, `POST /v1/logs` and `POST /v1/traces`, for producers that already
//! export OpenTelemetry: zero-code observation with at-least-once delivery (the exporter
//! retries; a redelivered record is recorded once). There is no receipt for the producer:
//! code that must fail its action when audit fails uses the native API.
//!
//! Following the OTLP specification: `application/x-protobuf` and `application/json`
//! bodies (the media type matched case-insensitively), plain or gzip (inflated by the
//! router), answered in the request's encoding; records that cannot be mapped or that a
//! plugin rejects are counted in `partial_success`; errors carry a `google.rpc.Status`, and
//! only 429 and 503 (nothing recorded for lack of room or ledger) are retryable.

mod map;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vellum::ledger::idempotency::event_key;
use vellum::{AuditEvent, EmitError};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::App;
use map::{Origin, log_event, span_event};

/// A request's encoding, which its answer uses too.
#[derive(Clone, Copy)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP error answer.
#[derive(Clone, PartialEq, Message, Serialize)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An OTLP error answer: the HTTP status, the gRPC code, the message.
struct Failure(StatusCode, i32, String);

const INVALID_ARGUMENT: i32 = 3;
const DEADLINE_EXCEEDED: i32 = 4;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// What became of a request's records.
#[derive(Default)]
struct Tally {
    rejected: i64,
    first_problem: Option<String>,
}

impl Tally {
    fn refuse(&mut self, problem: String) {
        self.rejected += 1;
        self.first_problem.get_or_insert(problem);
    }

    fn message(&self) -> String {
        match &self.first_problem {
            Some(problem) if self.rejected > 1 => {
                format!(
                    "{} records not recorded; the first: {problem}",
                    self.rejected
                )
            }
            Some(problem) => problem.clone(),
            None => String::new(),
        }
    }
}

/// `POST /v1/traces`.
pub async fn traces(
    State(app): State<App>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    receive(
        &app,
        &tenant,
        &headers,
        body,
        |request: ExportTraceServiceRequest| {
            let mut events = Vec::new();
            for resource_spans in &request.resource_spans {
                for scope_spans in &resource_spans.scope_spans {
                    let origin = Origin {
                        resource: resource_spans.resource.as_ref(),
                        scope: scope_spans.scope.as_ref().map_or("", |s| s.name.as_str()),
                    };
                    events.extend(scope_spans.spans.iter().map(|s| span_event(s, &origin)));
                }
            }
            events
        },
        |tally: Tally| ExportTraceServiceResponse {
            partial_success: (tally.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: tally.rejected,
                error_message: tally.message(),
            }),
        },
    )
    .await
}

/// `POST /v1/logs`.
pub async fn logs(
    State(app): State<App>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    receive(
        &app,
        &tenant,
        &headers,
        body,
        |request: ExportLogsServiceRequest| {
            let mut events = Vec::new();
            for resource_logs in &request.resource_logs {
                for scope_logs in &resource_logs.scope_logs {
                    let origin = Origin {
                        resource: resource_logs.resource.as_ref(),
                        scope: scope_logs.scope.as_ref().map_or("", |s| s.name.as_str()),
                    };
                    events.extend(scope_logs.log_records.iter().map(|r| log_event(r, &origin)));
                }
            }
            events
        },
        |tally: Tally| ExportLogsServiceResponse {
            partial_success: (tally.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: tally.rejected,
                error_message: tally.message(),
            }),
        },
    )
    .await
}

/// The shared receiver: decode, map, record each record, answer. The caller's token was
/// checked by the request guard before the body was read.
async fn receive<Req, Resp>(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    to_events: impl FnOnce(Req) -> Vec<Result<AuditEvent, String>>,
    to_response: impl FnOnce(Tally) -> Resp,
) -> Response
where
    Req: Message + Default + DeserializeOwned,
    Resp: Message + Serialize,
{
    let Some(encoding) = encoding(headers) else {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let message = format!(
            "unsupported Content-Type `{content_type}`: send application/x-protobuf or \
             application/json"
        );
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
    };
    let result = async {
        let body = body.map_err(|e| Failure(e.status(), INVALID_ARGUMENT, e.body_text()))?;
        let request: Req = match encoding {
            Encoding::Protobuf => Req::decode(body).map_err(|e| e.to_string()),
            Encoding::Json => serde_json::from_slice(&body).map_err(|e| e.to_string()),
        }
        .map_err(|e| {
            Failure(
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                format!("undecodable request: {e}"),
            )
        })?;
        let tally = record(app, tenant, to_events(request)).await?;
        Ok(to_response(tally))
    }
    .await;
    match result {
        Ok(response) => encode(encoding, StatusCode::OK, &response),
        Err(Failure(status, code, message)) => {
            failure(encoding, status, code, message, Some(app.retry_after))
        }
    }
}

/// The request's encoding by its Content-Type, whose media type is matched
/// case-insensitively (parameters such as `charset` are ignored); `None` for any other.
fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media_type = content_type.split(';').next()?.trim();
    if media_type.eq_ignore_ascii_case("application/x-protobuf") {
        Some(Encoding::Protobuf)
    } else if media_type.eq_ignore_ascii_case("application/json") {
        Some(Encoding::Json)
    } else {
        None
    }
}

/// Whether `route` is an OTLP receiver's, whose errors take the OTLP shape.
pub fn is_otlp_route(route: &str) -> bool {
    matches!(route, "/v1/logs" | "/v1/traces")
}

/// The OTLP answer to a request the guard refused (no token, no free slot, a body too
/// large or too slow): a `google.rpc.Status` in the request's encoding (JSON when it has
/// none the receivers take).
pub fn refusal(headers: &HeaderMap, error: &ApiError) -> Response {
    let status = error.status();
    let code = match status {
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::TOO_MANY_REQUESTS => RESOURCE_EXHAUSTED,
        StatusCode::REQUEST_TIMEOUT => DEADLINE_EXCEEDED,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        _ => INVALID_ARGUMENT,
    };
    let encoding = encoding(headers).unwrap_or(Encoding::Json);
    failure(
        encoding,
        status,
        code,
        error.message().to_string(),
        error.retry_after(),
    )
}

/// An error answer; 429 and 503 carry `Retry-After`.
fn failure(
    encoding: Encoding,
    status: StatusCode,
    code: i32,
    message: String,
    retry_after: Option<u64>,
) -> Response {
    let mut response = encode(encoding, status, &Status { code, message });
    if let Some(seconds) = retry_after
        && matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        )
    {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Records every mappable record as its own idempotent emit (a redelivery is recorded
/// once); counts the unmappable, invalid and rejected ones. Fails as a whole, retryably,
/// when the sink cannot record: what was recorded before is found again on the retry.
async fn record(
    app: &App,
    tenant: &str,
    events: Vec<Result<AuditEvent, String>>,
) -> Result<Tally, Failure> {
    let app = app.clone();
    let tenant = tenant.to_string();
    tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        let mut tickets = Vec::with_capacity(events.len());
        for event in events {
            let mut event = match event {
                Ok(event) => event,
                Err(problem) => {
                    tally.refuse(problem);
                    continue;
                }
            };
            event.tenant = Some(tenant.clone());
            let key = event_key(&event.id);
            tickets.push(app.sink.submit_idempotent(&tenant, &key, vec![event]));
        }
        let mut unavailable = None;
        for ticket in tickets {
            match ticket.and_then(|t| t.wait()) {
                Ok(receipts) => app.metrics.recorded(&receipts),
                Err(error) => {
                    app.metrics.failed(&error, 1);
                    match error {
                        EmitError::Unavailable(m) => unavailable = Some(m),
                        other => tally.refuse(other.to_string()),
                    }
                }
            }
        }
        match unavailable {
            Some(m) => Err(Failure(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, m)),
            None => Ok(tally),
        }
    })
    .await
    .unwrap_or_else(|e| {
        Err(Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            RESOURCE_EXHAUSTED,
            format!("the receiver's worker stopped: {e}"),
        ))
    })
}

fn encode<T: Message + Serialize>(encoding: Encoding, status: StatusCode, body: &T) -> Response {
    let (content_type, bytes) = match encoding {
        Encoding::Protobuf => ("application/x-protobuf", body.encode_to_vec()),
        Encoding::Json => (
            "application/json",
            serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
        ),
    };
    (status, [(CONTENT_TYPE, content_type)], bytes).into_response()
}
