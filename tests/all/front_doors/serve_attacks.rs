//! `vellum serve`'s native API under attack: what is read back is exactly what was hashed
//! (proofs fetched over HTTP verify whatever the producer's JSON style), an unauthenticated
//! or slow client cannot take the request slots or a connection for long, a stalled client
//! cannot hold a stop, pages are bounded in bytes, and the smaller holes stay closed.

use std::time::Duration;

use axum::http::{StatusCode, header};
use vellum::ledger::bundle::ProofBundle;
use vellum::ledger::entry::Entry;

use super::{
    Fixture, Live, body_bytes, body_json, connect_and_send, fixture, read_until_closed, request,
    send, short_limits, small_event, status_line,
};

/// Payloads as producers really write them: key order, spaces and newlines, unicode
/// escapes, numbers past f64, duplicate keys.
const STYLES: &[&str] = &[
    r#"{"b":1,"a":2}"#,
    r#"{"b": 1, "a": [1, 2, {"z": null, "y": true}]}"#,
    "{\n  \"indented\" : \"yes\",\n  \"tab\":\t1\n}",
    r#"{"s":"\u00e9\ud83d\ude00 caf\u00E9","raw":"é😀"}"#,
    r#"{"big":123456789012345678901234567890,"tiny":1e-999999,"long":0.12345678901234567890123}"#,
    r#"{"a":1,"a":2}"#,
    r#"[1, "two", 3.0]"#,
];

fn event_with(id: &str, payload: &str) -> String {
    format!(
        r#"{{"id":"{id}","occurred_at":"2026-01-01T00:00:00Z","kind":"k","payload":{payload}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_and_proofs_carry_the_stored_bytes_and_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "");
    let vkey = app.sink.ledger().verifier_key().to_string();
    for (i, payload) in STYLES.iter().enumerate() {
        let id = format!("style-{i}");
        let response = send(
            &app,
            request("POST", "/v1/emit", Some(&acme), event_with(&id, payload)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{payload}");
        let seq = body_json(response).await["receipt"]["seq"]
            .as_u64()
            .unwrap();

        // `/v1/entries` hands back the payload's text exactly.
        let page = body_bytes(
            send(
                &app,
                request("GET", "/v1/entries?limit=100", Some(&acme), ""),
            )
            .await,
        )
        .await;
        let page = String::from_utf8(page.to_vec()).unwrap();
        let needle = format!(r#""payload":{payload}"#);
        assert!(page.contains(&needle), "{payload} came back as {page}");

        // The proof's entry is the stored one, so it hashes to its leaf.
        let response = send(
            &app,
            request(
                "GET",
                &format!("/v1/proof/inclusion/{seq}"),
                Some(&acme),
                "",
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = body_bytes(response).await;
        let bundle: ProofBundle = serde_json::from_slice(&bytes).unwrap();
        let entry: &Entry = bundle.inclusion.as_ref().unwrap().entry.as_ref().unwrap();
        assert_eq!(entry.event.payload.as_str(), *payload);
        bundle
            .check(&vkey)
            .unwrap_or_else(|e| panic!("the proof of {payload} does not verify: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_probing_another_tenants_uncovered_entry_signs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture {
        app, acme, beta, ..
    } = fixture(dir.path(), false, "");
    let response = send(
        &app,
        request("POST", "/v1/emit", Some(&acme), small_event("a1")),
    )
    .await;
    let seq = body_json(response).await["receipt"]["seq"]
        .as_u64()
        .unwrap();
    let checkpoints = || app.sink.ledger().checkpoints().unwrap().len();
    let before = checkpoints();
    for path in [
        format!("/v1/proof/inclusion/{seq}"),
        format!("/v1/proof/inclusion/{}", seq + 1000),
    ] {
        let response = send(&app, request("GET", &path, Some(&beta), "")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        checkpoints(),
        before,
        "a refused probe made the ledger sign"
    );
    // The owner's request signs one.
    let response = send(
        &app,
        request(
            "GET",
            &format!("/v1/proof/inclusion/{seq}"),
            Some(&acme),
            "",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(checkpoints(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_past_the_signed_range_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "");
    send(
        &app,
        request("POST", "/v1/emit", Some(&acme), small_event("c1")),
    )
    .await;
    for cursor in ["v1.8000000000000000", "v1.ffffffffffffffff"] {
        let response = send(
            &app,
            request(
                "GET",
                &format!("/v1/entries?cursor={cursor}"),
                Some(&acme),
                "",
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{cursor}");
    }
    let response = send(
        &app,
        request(
            "GET",
            "/v1/entries?cursor=v1.7fffffffffffffff",
            Some(&acme),
            "",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["entries"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_event_ids_are_idempotent_without_a_header_key() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "");
    let id = "i".repeat(400);
    let first = send(
        &app,
        request("POST", "/v1/emit", Some(&acme), small_event(&id)),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = body_json(first).await;
    let again = body_json(
        send(
            &app,
            request("POST", "/v1/emit", Some(&acme), small_event(&id)),
        )
        .await,
    )
    .await;
    assert_eq!(
        first, again,
        "a retry of a long id is answered from its key"
    );
    assert_eq!(app.sink.ledger().size().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "");
    for (i, scheme) in ["bearer", "BEARER", "Bearer"].iter().enumerate() {
        let mut req = request("POST", "/v1/emit", None, small_event(&format!("s{i}")));
        req.headers_mut().insert(
            header::AUTHORIZATION,
            format!("{scheme} {acme}").parse().unwrap(),
        );
        assert_eq!(send(&app, req).await.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_bounded_in_bytes_and_the_cursor_continues() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(
        dir.path(),
        false,
        "max-page-bytes = 200000\nmax-body-bytes = 8388608\n",
    );
    // 40 entries of ~50 kB: 2 MB in all, a tenth of which fits a page.
    let blob = "x".repeat(50_000);
    let events: Vec<String> = (0..40)
        .map(|i| event_with(&format!("big-{i}"), &format!(r#"{{"blob":"{blob}"}}"#)))
        .collect();
    let batch = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let response = send(&app, request("POST", "/v1/emit-batch", Some(&acme), batch)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut seen = Vec::new();
    let mut path = "/v1/entries?limit=10000".to_string();
    loop {
        let bytes = body_bytes(send(&app, request("GET", &path, Some(&acme), "")).await).await;
        assert!(
            bytes.len() < 200_000 + 60_000,
            "a page of {} bytes, past the budget and one entry",
            bytes.len()
        );
        let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let entries = page["entries"].as_array().unwrap();
        // Only a last page may be empty (the one before ended exactly at the end).
        assert!(entries.len() < 40);
        assert!(
            !entries.is_empty() || page["next_cursor"].is_null(),
            "{page}"
        );
        seen.extend(entries.iter().map(|e| e["seq"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/entries?limit=10000&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..40).collect::<Vec<_>>(),
        "every entry once, in order"
    );
}

/// The resident set of this process (the in-process server's), in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The largest resident set seen, sampled every 2 ms, while `work` runs.
async fn peak_rss_kb_during<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = rss_kb();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kb());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let result = work.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (result, sampler.join().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_large_reads_stay_within_the_page_budget_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // The default page budget (4 MiB); 64 MB of entries.
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "max-body-bytes = 16777216\n");
    let blob = "y".repeat(500_000);
    for round in 0..16 {
        let events: Vec<String> = (0..8)
            .map(|i| event_with(&format!("r{round}-{i}"), &format!(r#"{{"blob":"{blob}"}}"#)))
            .collect();
        let batch = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let response = send(&app, request("POST", "/v1/emit-batch", Some(&acme), batch)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let before = rss_kb();
    let reads = async {
        let reads: Vec<_> = (0..4)
            .map(|_| {
                let (app, acme) = (app.clone(), acme.clone());
                tokio::spawn(async move {
                    let response = send(
                        &app,
                        request("GET", "/v1/entries?limit=10000", Some(&acme), ""),
                    )
                    .await;
                    body_bytes(response).await.len()
                })
            })
            .collect();
        let mut sizes = Vec::new();
        for read in reads {
            sizes.push(read.await.unwrap());
        }
        sizes
    };
    let (sizes, peak) = peak_rss_kb_during(reads).await;
    let grown_mb = peak.saturating_sub(before) / 1024;
    println!(
        "4 parallel reads of a 64 MB ledger: pages of {sizes:?} bytes, peak RSS +{grown_mb} MB"
    );
    assert!(sizes.iter().all(|&s| s < (4 << 20) + 600_000), "{sizes:?}");
    // Bounded: about +22 MB measured. Unbounded, each page is the whole 64 MB ledger:
    // +143 MB measured for four at once.
    assert!(grown_mb < 80, "peak RSS grew by {grown_mb} MB");
}

const SLOW_HEADERS: &[u8] = b"POST /v1/emit HTTP/1.1\r\nHost: x\r\nContent-Type: appl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_at_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, .. } = fixture(dir.path(), false, "");
    let live = Live::start(vellum_server::router(app), short_limits(1, 5)).await;
    let addr = live.addr;
    let cut = tokio::task::spawn_blocking(move || {
        let mut stream = connect_and_send(addr, SLOW_HEADERS);
        read_until_closed(&mut stream)
    })
    .await
    .unwrap();
    assert!(!cut.contains("200 OK"), "{cut}");
    live.stop_within(Duration::from_secs(30)).await.unwrap();
}

/// The head of an emit whose body (`declared` bytes) never fully arrives.
fn stalled_emit(token: Option<&str>, declared: usize) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /v1/emit HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {declared}\r\n\r\n{{"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_cannot_take_the_request_slots() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(
        dir.path(),
        false,
        "max-concurrent-requests = 2\nbody-read-timeout-secs = 2\n",
    );
    let live = Live::start(vellum_server::router(app), short_limits(30, 5)).await;
    let addr = live.addr;
    let acme2 = acme.clone();
    tokio::task::spawn_blocking(move || {
        // 16 unauthenticated slow bodies are answered 401 from their headers alone.
        let mut anonymous: Vec<_> = (0..16)
            .map(|_| connect_and_send(addr, &stalled_emit(None, 100_000)))
            .collect();
        for stream in &mut anonymous {
            assert!(status_line(stream).contains(" 401 "));
        }
        // Two authenticated slow bodies hold both slots...
        let mut slow: Vec<_> = (0..2)
            .map(|_| connect_and_send(addr, &stalled_emit(Some(&acme2), 100_000)))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // ...but never health, readiness, or the budget of routes without a token.
        let agent = ureq::Agent::new_with_defaults();
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            let response = agent.get(&format!("http://{addr}{path}")).call().unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
        // The slow bodies get 408 at their deadline, and their slots free.
        for stream in &mut slow {
            let line = status_line(stream);
            assert!(line.contains(" 408 "), "{line}");
        }
        let response = agent
            .post(&format!("http://{addr}/v1/emit"))
            .header("Authorization", &format!("Bearer {acme2}"))
            .header("Content-Type", "application/json")
            .send(&small_event("after-slow")[..])
            .unwrap();
        assert_eq!(response.status(), 200);
    })
    .await
    .unwrap();
    live.stop_within(Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_cannot_hold_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let Fixture { app, acme, .. } = fixture(dir.path(), false, "body-read-timeout-secs = 600\n");
    let live = Live::start(vellum_server::router(app.clone()), short_limits(600, 2)).await;
    let addr = live.addr;
    let acme2 = acme.clone();
    let stalled = tokio::task::spawn_blocking(move || {
        // An acknowledged emit, then a request whose body never ends.
        let response = ureq::post(&format!("http://{addr}/v1/emit"))
            .header("Authorization", &format!("Bearer {acme2}"))
            .header("Content-Type", "application/json")
            .send(&small_event("acked")[..])
            .unwrap();
        assert_eq!(response.status(), 200);
        connect_and_send(addr, &stalled_emit(Some(&acme2), 1000))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The loop returns at the drain deadline (2 s), not when the client gives up.
    live.stop_within(Duration::from_secs(20)).await.unwrap();
    drop(stalled);
    let checkpoint = app.sink.close().unwrap();
    assert!(checkpoint.lines().nth(1) == Some("1"), "{checkpoint}");
}
