//! The OTLP/HTTP receivers under attack: the token is checked before the body is read, so a
//! slow or huge anonymous export takes nothing; refusals keep the OTLP shape
//! (`google.rpc.Status` in the request's encoding); media types and the bearer scheme match
//! case-insensitively.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::{
    Fixture, Live, body_bytes, connect_and_send, fixture, send, short_limits, status_line,
};

/// A protobuf export of one `execute_tool` span with id `span`.
fn export(span: u8) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![span; 8],
                    name: "execute_tool lookup".into(),
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn traces(content_type: &str, authorization: Option<String>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::post("/v1/traces").header(header::CONTENT_TYPE, content_type);
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder.body(Body::from(body)).unwrap()
}

/// The `google.rpc.Status` code of a protobuf error answer.
fn rpc_code(bytes: &[u8]) -> i32 {
    #[derive(Clone, PartialEq, Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    Status::decode(bytes).unwrap().code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_types_and_the_bearer_scheme_match_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "");
    for (i, (content_type, scheme)) in [
        ("application/x-protobuf", "Bearer"),
        ("Application/X-Protobuf", "bearer"),
        ("APPLICATION/X-PROTOBUF; charset=binary", "BEARER"),
    ]
    .into_iter()
    .enumerate()
    {
        let response = send(
            &app,
            traces(
                content_type,
                Some(format!("{scheme} {acme}")),
                export(i as u8 + 1),
            ),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{content_type} / {scheme}"
        );
    }
    assert_eq!(app.sink.ledger().size().unwrap(), 3);
    let response = send(
        &app,
        traces(
            "Application/JSON",
            Some(format!("Bearer {acme}")),
            b"{}".to_vec(),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(
        &app,
        traces("text/plain", Some(format!("Bearer {acme}")), b"x".to_vec()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_keep_the_otlp_shape() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "max-concurrent-requests = 1\n");
    let response = send(&app, traces("application/x-protobuf", None, export(1))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-protobuf"
    );
    assert_eq!(rpc_code(&body_bytes(response).await), 16, "UNAUTHENTICATED");
    // No free slot: 429, RESOURCE_EXHAUSTED, with Retry-After.
    let busy = app.requests.clone().try_acquire_owned().unwrap();
    let response = send(
        &app,
        traces(
            "application/x-protobuf",
            Some(format!("Bearer {acme}")),
            export(1),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        rpc_code(&body_bytes(response).await),
        8,
        "RESOURCE_EXHAUSTED"
    );
    drop(busy);
}

/// The head of a protobuf export whose 100 kB body never arrives.
fn stalled_export(token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/x-protobuf\r\n\
         Content-Length: 100000\r\n\r\n\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_anonymous_exports_take_no_slot_and_slow_signed_ones_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(
        dir.path(),
        false,
        "max-concurrent-requests = 1\nbody-read-timeout-secs = 1\n",
    );
    let live = Live::start(vellum_server::router(app), short_limits(30, 5)).await;
    let addr = live.addr;
    tokio::task::spawn_blocking(move || {
        let mut anonymous: Vec<_> = (0..16)
            .map(|_| connect_and_send(addr, &stalled_export(None)))
            .collect();
        for stream in &mut anonymous {
            let line = status_line(stream);
            assert!(line.contains(" 401 "), "{line}");
        }
        // The one slot is still free for a real export.
        let response = ureq::post(&format!("http://{addr}/v1/traces"))
            .header("Authorization", &format!("Bearer {acme}"))
            .header("Content-Type", "application/x-protobuf")
            .send(&export(9)[..])
            .unwrap();
        assert_eq!(response.status(), 200);
        // A signed export that stalls gets 408 at the body deadline.
        let mut slow = connect_and_send(addr, &stalled_export(Some(&acme)));
        let line = status_line(&mut slow);
        assert!(line.contains(" 408 "), "{line}");
    })
    .await
    .unwrap();
    live.stop_within(Duration::from_secs(30)).await.unwrap();
}
