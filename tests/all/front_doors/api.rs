//! The API's answers that real clients cannot easily provoke, checked on the router
//! in-process: a full ledger is a 503 with `Retry-After` (nothing recorded), a server
//! serving its `max-concurrent-requests` answers 429, whole-ledger verification needs an
//! admin token (and finds an insider's edit of the database file), so does erasure, and gzip
//! bodies are inflated within the body limit (a gzip bomb is a 413, a corrupt stream a 400,
//! another encoding a 415).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use vellum_server::App;

use super::{body_json, fixture, send, small_event};

/// An event larger than the room the capped ledger has left.
fn event() -> String {
    format!(
        r#"{{"id":"e1","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","payload":{{"blob":"{}"}}}}"#,
        "x".repeat(1 << 20)
    )
}

/// A server with `max-concurrent-requests = 1` and `retry-after-secs = 7`; the acme token.
fn app(dir: &std::path::Path, full: bool) -> (App, String) {
    let fixture = fixture(
        dir,
        full,
        "max-concurrent-requests = 1\nretry-after-secs = 7\n",
    );
    std::fs::write(dir.join("admin.token"), &fixture.admin).unwrap();
    (fixture.app, fixture.acme)
}

fn emit(token: &str) -> Request<Body> {
    Request::post("/v1/emit")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(event()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ledger_is_503_with_retry_after_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = app(dir.path(), true);
    let response = send(&app, emit(&token)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    let body = body_json(response).await;
    assert_eq!(body["error"]["class"], "unavailable", "{body}");
    assert_eq!(app.sink.ledger().size().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_is_429() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = app(dir.path(), true);
    // One request in flight (its permit held), the limit being one.
    let busy = app.requests.clone().try_acquire_owned().unwrap();
    let response = send(&app, emit(&token)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    assert_eq!(body_json(response).await["error"]["class"], "busy");
    drop(busy);
    let response = send(&app, emit(&token)).await;
    assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn emit_encoded(token: &str, encoding: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/emit")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, encoding)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_inflated_within_the_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = app(dir.path(), false);
    let small = small_event("g1");

    let response = send(&app, emit_encoded(&token, "gzip", gzip(&small))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["receipt"]["event_id"], "g1");

    // A gzip bomb: 16 KiB on the wire, 16 MiB inflated, 4 MiB allowed.
    let mut bomb =
        br#"{"id":"g2","occurred_at":"2026-11-22T09:00:00Z","kind":"k","payload":{"x":""#.to_vec();
    bomb.resize(16 << 20, b'0');
    bomb.extend_from_slice(br#""}}"#);
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 64 << 10, "{} bytes compressed", bomb.len());
    let response = send(&app, emit_encoded(&token, "gzip", bomb)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A stream that is not gzip, and an encoding the server does not take.
    let mut corrupt = gzip(&small);
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let response = send(&app, emit_encoded(&token, "gzip", corrupt)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(&app, emit_encoded(&token, "br", small.clone())).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let accepted = response.headers()[header::ACCEPT_ENCODING]
        .to_str()
        .unwrap();
    assert!(accepted.contains("gzip"), "{accepted}");

    // Only the first event was recorded.
    app.sink.close().unwrap();
    assert_eq!(app.sink.ledger().size().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_ledger_verification_needs_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = app(dir.path(), false);
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let verify = |token: &str| {
        Request::post("/v1/verify")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let response = send(&app, verify(&token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = body_json(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin = true"),
        "{body}"
    );
    let response = send(&app, verify("vt_unknown")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = send(&app, emit_encoded(&token, "identity", small_event("v1"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(&app, verify(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = body_json(response).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries_checked"], 1, "{report}");

    // An insider edits the recorded payload in the database file behind the server's back:
    // the verification the server runs (on a connection of its own) finds it.
    let db = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for trigger in triggers {
        db.execute_batch(&format!("DROP TRIGGER {trigger}"))
            .unwrap();
    }
    db.execute_batch("UPDATE contents SET sealed = zeroblob(64) WHERE seq = 0")
        .unwrap();
    let response = send(&app, verify(&admin)).await;
    let report = body_json(response).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["findings"][0]["seq"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_needs_an_admin_token_a_reason_and_a_single_target() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = app(dir.path(), false);
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let erase = |token: &str, body: &str| {
        Request::post("/v1/erase")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    for (i, who) in ["ada", "bob", "ada"].iter().enumerate() {
        let event = format!(
            r#"{{"id":"e{i}","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call",
                "payload":{{"note":"{who}-private"}},"labels":{{"data_subject":"{who}"}}}}"#
        );
        let response = send(&app, emit_encoded(&token, "identity", event.into_bytes())).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let body = r#"{"subject":"ada","reason":"GDPR art. 17"}"#;
    let response = send(&app, erase(&token, body)).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a tenant token may not"
    );
    for bad in [
        r#"{"subject":"ada","reason":" "}"#,
        r#"{"subject":"ada","seqs":[1],"reason":"x"}"#,
        r#"{"reason":"x"}"#,
        r#"{"subject":"ada","reason":"x","extra":1}"#,
        r#"{"subject":"nobody","reason":"x"}"#,
    ] {
        let response = send(&app, erase(&admin, bad)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let response = send(&app, erase(&admin, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = body_json(response).await;
    assert_eq!(report["entries_erased"], 2, "{report}");
    let record = report["record_seq"].as_u64().unwrap();
    let ledger = app.sink.ledger();
    let page = ledger
        .query(&vellum::ledger::query::Query {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(page.entries[0].is_erased() && !page.entries[1].is_erased());
    let logged = &page.entries[record as usize];
    assert!(
        logged
            .event
            .payload
            .as_str()
            .contains("admin token of tenant")
    );
    // A legal hold makes it a 409 naming the hold.
    ledger
        .add_hold(vellum::ledger::HoldRequest::Subject("bob".into()), "case 3")
        .unwrap();
    let response = send(&app, erase(&admin, r#"{"subject":"bob","reason":"x"}"#)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = body_json(response).await;
    assert_eq!(body["error"]["class"], "held", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("case 3")
    );
}
