//! Secrets planted through every front door — native emit, batch and status change, OTLP
//! logs and spans — in every field a producer fills (actor, subject, labels, payload values,
//! keys and numbers, OTLP resource and span attributes), with the shipped `redact` plugin
//! in its default configuration: none of them is found in the database file afterwards,
//! WAL included.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use vellum::chain::ChainConfig;

use super::{Fixture, fixture_with_chain, request, send};

const EMAIL: &str = "alice.planted@example.com";
const CARD: &str = "4111111111111111";
const AWS: &str = "AKIAIOSFODNN7PLANTED";
const OPENAI: &str = "sk-proj-Pl4nt3dK3yAbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEf";

fn text(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(text(value)),
        ..KeyValue::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            attribute("service.name", &format!("svc {EMAIL}")),
            attribute("deployment.key", AWS),
        ],
        ..Resource::default()
    })
}

fn otlp(path: &str, token: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_planted_through_every_front_door_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let chain = ChainConfig::parse(
        &format!(
            "[[plugin]]\nname = \"redact\"\ncomponent = \"{}\"\n",
            vellum_guest_artifacts::REDACT
        ),
        dir.path(),
    )
    .unwrap();
    let Fixture { app, acme, .. } = fixture_with_chain(dir.path(), false, "", &chain);
    let event = |id: &str| {
        format!(
            r#"{{"id":"{id}","occurred_at":"2026-12-07T00:00:00Z","kind":"tool.call",
                "actor":"agent for {EMAIL}","subject":"{AWS}","labels":{{"owner":"{EMAIL}","token":"x{CARD}"}},
                "payload":{{"{EMAIL}":1,"card":{CARD},"args":"{{\"api_key\": \"{OPENAI}\"}}",
                            "stdout":"DB_PASSWORD=Hunter2Planted\nOPENAI={OPENAI}"}}}}"#
        )
    };
    let ok = |status: StatusCode, what: &str| assert_eq!(status, StatusCode::OK, "{what}");
    ok(
        send(&app, request("POST", "/v1/emit", Some(&acme), event("p1")))
            .await
            .status(),
        "emit",
    );
    let batch = format!(r#"{{"events":[{},{}]}}"#, event("p2"), event("p3"));
    ok(
        send(&app, request("POST", "/v1/emit-batch", Some(&acme), batch))
            .await
            .status(),
        "batch",
    );
    let status_change = format!(
        r#"{{"envelope":{{"id":"p4","occurred_at":"2026-12-07T00:00:00Z","actor":"{EMAIL}"}},
            "change":{{"intent_id":"i-1","old_status":"active","new_status":"completed",
                       "reason":"approved by {EMAIL} with card {CARD}"}}}}"#
    );
    ok(
        send(
            &app,
            request("POST", "/v1/status-change", Some(&acme), status_change),
        )
        .await
        .status(),
        "status change",
    );
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: 1_765_000_000_000_000_000,
                    body: Some(text(&format!("user {EMAIL} pasted {OPENAI}"))),
                    attributes: vec![attribute(
                        "gen_ai.tool.call.arguments",
                        &format!("{{\"password\": \"Hunter2Planted\", \"card\": \"{CARD}\"}}"),
                    )],
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    ok(
        send(&app, otlp("/v1/logs", &acme, logs.encode_to_vec()))
            .await
            .status(),
        "otlp logs",
    );
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    name: format!("execute_tool {EMAIL}"),
                    start_time_unix_nano: 1_765_000_000_000_000_000,
                    attributes: vec![
                        attribute("gen_ai.operation.name", "execute_tool"),
                        attribute("gen_ai.tool.name", &format!("lookup {AWS}")),
                        attribute(
                            "gen_ai.tool.call.arguments",
                            &format!("{{\"query\": \"{EMAIL}\", \"key\": \"{OPENAI}\"}}"),
                        ),
                    ],
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    ok(
        send(&app, otlp("/v1/traces", &acme, spans.encode_to_vec()))
            .await
            .status(),
        "otlp spans",
    );
    let recorded = app.sink.ledger().size().unwrap();
    assert_eq!(recorded, 6, "every planted event is recorded");
    app.sink.close().unwrap();
    let mut stored = Vec::new();
    for file in ["audit.db", "audit.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            stored.extend(bytes);
        }
    }
    let haystack = String::from_utf8_lossy(&stored);
    for planted in [EMAIL, CARD, AWS, OPENAI, "Hunter2Planted"] {
        assert!(
            !haystack.contains(planted),
            "{planted} reached the database file"
        );
    }
}
