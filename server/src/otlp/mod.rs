//! OTLP/HTTP receivers, `POST /v1/logs` and `POST /v1/traces`, for producers that already
//! export OpenTelemetry: zero-code observation with at-least-once delivery (the exporter
//! retries; a redelivered record is recorded once). There is no receipt for the producer:
//! code that must fail its action when audit fails uses the native API.
//!
//! Following the OTLP specification: `application/x-protobuf` and `application/json`
//! bodies, plain or gzip (inflated by the router), answered in the request's encoding; records that cannot be mapped or that a
//! plugin rejects are counted in `partial_success`; errors carry a `google.rpc.Status`, and
//! only 429 and 503 (nothing recorded for lack of room or ledger) are retryable.

mod map;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
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
use vellum::{AuditEvent, EmitError};

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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    receive(
        &app,
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    receive(
        &app,
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

/// The shared receiver: decode, authenticate, map, record each record, answer.
async fn receive<Req, Resp>(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    to_events: impl FnOnce(Req) -> Vec<Result<AuditEvent, String>>,
    to_response: impl FnOnce(Tally) -> Resp,
) -> Response
where
    Req: Message + Default + DeserializeOwned,
    Resp: Message + Serialize,
{
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = match content_type.split(';').next().map(str::trim) {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        _ => {
            let message = format!(
                "unsupported Content-Type `{content_type}`: send application/x-protobuf or \
                 application/json"
            );
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
        }
    };
    let result = async {
        let tenant = tenant(app, headers)?;
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
        let tally = record(app, &tenant, to_events(request)).await?;
        Ok(to_response(tally))
    }
    .await;
    match result {
        Ok(response) => encode(encoding, StatusCode::OK, &response),
        Err(Failure(status, code, message)) => {
            let mut response = encode(encoding, status, &Status { code, message });
            if matches!(
                status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            ) {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(app.retry_after),
                );
            }
            response
        }
    }
}

fn tenant(app: &App, headers: &HeaderMap) -> Result<String, Failure> {
    let unauthenticated =
        |m: &str| Failure(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, m.to_string());
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthenticated("missing `Authorization: Bearer <token>`"))?;
    app.tokens
        .tenant(token.trim())
        .map(str::to_string)
        .ok_or_else(|| unauthenticated("unknown token"))
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
            let key = format!("event:{}", event.id);
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
