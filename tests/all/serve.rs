//! `vellum serve` with real clients on loopback: Python (standard library) and Node
//! (`fetch`) producers, the official OpenTelemetry SDKs of both exporting over OTLP/HTTP,
//! and a load of 8 clients × 5,000 emits across a `kill -9` of the server.

use crate::common;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vellum::ledger::query::Query;

const VELLUM: &str = env!("CARGO_BIN_EXE_vellum");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A ledger, two tenants' tokens and a sink file with the policy plugin.
struct Setup {
    dir: tempfile::TempDir,
    token_a: String,
    token_b: String,
}

fn token(tenant: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new(VELLUM)
        .args(["token", "new", "--tenant", tenant])
        .args(extra)
        .output()
        .expect("run vellum token new");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (token, entry) = text.split_once("\n\n").expect("token, blank line, entry");
    (token.to_string(), entry.to_string())
}

fn setup(listen: &str) -> Setup {
    setup_with(listen, "")
}

/// [`setup`] with more lines for the `[server]` table.
fn setup_with(listen: &str, server_extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = dir.path().join("audit.db");
    let init = Command::new(VELLUM)
        .args(["init", "--ledger"])
        .arg(&ledger)
        .output()
        .expect("run vellum init");
    assert!(init.status.success(), "{init:?}");
    std::fs::write(
        dir.path().join("policy.toml"),
        r#"default = "keep"
[[rule]]
name = "no-destructive-tools-in-prod"
when = { all = [
  { field = "payload.tool", in = ["fs.delete"] },
  { field = "labels.env", equals = "prod" },
] }
action = "reject"
reason = "destructive tool calls in prod need an approval"
[[rule]]
name = "drop-heartbeats"
when = { field = "kind", matches = '^heartbeat\.' }
action = "drop"
reason = "liveness noise"
"#,
    )
    .expect("write policy");
    // A's token is also an operator's (it may verify the whole ledger), B's is not.
    let (token_a, entry_a) = token("acme", &["--admin"]);
    assert!(entry_a.contains("admin = true"), "{entry_a}");
    let (token_b, entry_b) = token("beta", &[]);
    let config = format!(
        "[ledger]\npath = \"audit.db\"\ncheckpoint-interval-secs = 1\n\
         [chain]\n[[chain.plugin]]\nname = \"policy\"\ncomponent = \"{}\"\n\
         config-file = \"policy.toml\"\n\
         [server]\nlisten = \"{listen}\"\nunix-socket = \"vellum.sock\"\n\
         max-body-bytes = 1048576\n{server_extra}\n{entry_a}\n{entry_b}\n",
        vellum_guest_artifacts::POLICY
    );
    std::fs::write(dir.path().join("sink.toml"), config).expect("write sink file");
    Setup {
        dir,
        token_a,
        token_b,
    }
}

/// A running `vellum serve` and the addresses it printed.
struct Server {
    child: Child,
    url: String,
    socket: String,
}

impl Server {
    fn start(setup: &Setup) -> Server {
        let mut child = Command::new(VELLUM)
            .args(["serve", "--config"])
            .arg(setup.dir.path().join("sink.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vellum serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut next = || {
            let line = lines
                .next()
                .expect("vellum serve exited before listening")
                .expect("read");
            line.strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected line {line}"))
                .to_string()
        };
        let url = next();
        let socket = next().trim_start_matches("unix:").to_string();
        Server { child, url, socket }
    }

    /// SIGTERM, then waits: the server drains and exits 0.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "vellum serve exited with {exit}");
    }
}

impl Drop for Server {
    /// A test that fails before `stop` must not leave its server running (it would hold the
    /// test's output open and its port).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run_client(program: &str, script: &Path, dir: &Path, env: &[(&str, &str)]) {
    let out = Command::new(program)
        .arg(script)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    print!("{stdout}");
}

#[test]
fn python_and_node_producers_emit_query_and_prove() {
    let setup = setup("127.0.0.1:0");
    let server = Server::start(&setup);
    let clients = repo().join("tests/clients");
    let proof = setup.dir.path().join("proof.json");
    let env = [
        ("VELLUM_URL", server.url.as_str()),
        ("VELLUM_SOCKET", server.socket.as_str()),
        ("VELLUM_TOKEN_A", setup.token_a.as_str()),
        ("VELLUM_TOKEN_B", setup.token_b.as_str()),
        ("VELLUM_PROOF_OUT", proof.to_str().expect("utf-8 path")),
    ];
    let socket_mode = std::fs::metadata(&server.socket)
        .expect("socket")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&socket_mode) & 0o777,
        0o600
    );
    run_client("python3", &clients.join("native_client.py"), &clients, &env);
    run_client("node", &clients.join("native_client.mjs"), &clients, &env);
    // The server's proof bundles check out with only the public key: the first, and one
    // per producer style each client saved exactly as served.
    let mut proofs = vec![proof.clone()];
    for entry in std::fs::read_dir(setup.dir.path()).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("proof.json.") {
            proofs.push(path);
        }
    }
    assert_eq!(proofs.len(), 1 + 4 + 3, "{proofs:?}");
    for proof in &proofs {
        let check = Command::new(VELLUM)
            .arg("check-proof")
            .arg(proof)
            .arg("--key-file")
            .arg(setup.dir.path().join("audit.db.pub"))
            .output()
            .expect("run check-proof");
        assert!(check.status.success(), "{}: {check:?}", proof.display());
    }
    server.stop();
    common::assert_verifies(&setup.dir.path().join("audit.db"));
}

#[test]
fn tls_serves_https_with_the_configured_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let tls = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    let setup = setup_with("127.0.0.1:0", &tls);
    let server = Server::start(&setup);
    let url = server.url.replace("https://127.0.0.1", "https://localhost");
    assert!(url.starts_with("https://localhost:"), "{url}");
    // A client that trusts only this certificate emits over HTTPS.
    let script = r#"
import json, ssl, sys, urllib.request
url, token, ca = sys.argv[1:4]
context = ssl.create_default_context(cafile=ca)
event = {"id": "tls-1", "occurred_at": "2026-11-22T09:00:00Z", "kind": "tool.call"}
request = urllib.request.Request(url + "/v1/emit", data=json.dumps(event).encode(),
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
with urllib.request.urlopen(request, context=context, timeout=30) as response:
    receipt = json.loads(response.read())["receipt"]
assert receipt["event_id"] == "tls-1", receipt
try:
    urllib.request.urlopen(url + "/healthz", context=ssl.create_default_context(), timeout=30)
    sys.exit("a client that does not trust the certificate got through")
except urllib.error.URLError as error:
    assert "CERTIFICATE_VERIFY_FAILED" in str(error), error
print("tls client: ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &url, &setup.token_a])
        .arg(&cert_path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
}

/// Installs the pinned OpenTelemetry SDKs into `target/` once (never skipped: a failed
/// install fails the test, saying why).
fn otel_sdks() -> (PathBuf, PathBuf) {
    let target = repo().join("target");
    let venv = target.join("otel-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let requirements = repo().join("tests/clients/requirements-otel.txt");
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "-r"])
                .arg(&requirements)
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot install the OpenTelemetry Python SDK into {}",
            venv.display()
        );
    }
    let node = target.join("otel-node");
    if !node
        .join("node_modules/@opentelemetry/exporter-trace-otlp-http")
        .exists()
    {
        std::fs::create_dir_all(&node).expect("create target/otel-node");
        std::fs::copy(
            repo().join("tests/clients/package.json"),
            node.join("package.json"),
        )
        .expect("copy package.json");
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&node)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot install the OpenTelemetry JS SDK into {}",
            node.display()
        );
    }
    std::fs::copy(
        repo().join("tests/clients/otel_export.mjs"),
        node.join("otel_export.mjs"),
    )
    .expect("copy the JS exporter script");
    (python, node)
}

#[test]
fn opentelemetry_sdks_export_logs_and_spans() {
    let (python, node) = otel_sdks();
    let setup = setup("127.0.0.1:0");
    let server = Server::start(&setup);
    let headers = format!("Authorization=Bearer%20{}", setup.token_a);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", server.url.as_str()),
        ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
        ("VELLUM_URL", server.url.as_str()),
        ("VELLUM_TOKEN_A", setup.token_a.as_str()),
    ];
    let clients = repo().join("tests/clients");
    // The Python SDK compresses (as the OpenTelemetry Collector does by default), the Node
    // one does not: the server takes both.
    let gzip = [&env[..], &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]].concat();
    run_client(
        python.to_str().expect("utf-8 path"),
        &clients.join("otel_export.py"),
        &clients,
        &gzip,
    );
    run_client("node", &node.join("otel_export.mjs"), &node, &env);
    server.stop();
}

/// POSTs one event until the server answers 200, retrying (same body, so the same
/// idempotency key) through refused connections and 503s. Returns the receipt's seq.
fn emit_until_recorded(agent: &ureq::Agent, url: &str, bearer: &str, body: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no 200 within two minutes for {body}"
        );
        let response = agent
            .post(url)
            .header("authorization", bearer)
            .header("content-type", "application/json")
            .send(body);
        let mut response = match response {
            Ok(response) => response,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 => {
                let value: serde_json::Value = serde_json::from_str(&text).expect("receipt JSON");
                return value["receipt"]["seq"].as_u64().expect("seq");
            }
            503 | 429 => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("unexpected {other} for {body}: {text}"),
        }
    }
}

#[test]
fn load_across_a_kill_loses_and_duplicates_nothing() {
    const CLIENTS: usize = 8;
    const EMITS: usize = 5_000;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let setup = setup(&format!("127.0.0.1:{port}"));
    let mut server = Server::start(&setup);
    let url = format!("{}/v1/emit", server.url);
    let bearer = format!("Bearer {}", setup.token_a);
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, bearer, acknowledged) = (url.clone(), bearer.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                (0..EMITS)
                    .map(|i| {
                        let id = format!("c{c}-{i}");
                        let body = format!(
                            r#"{{"id":"{id}","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","payload":{{"n":{i}}}}}"#
                        );
                        let seq = emit_until_recorded(&agent, &url, &bearer, &body);
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        (id, seq)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    while acknowledged.load(Ordering::Relaxed) < CLIENTS * EMITS / 4 {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().expect("kill -9 the server");
    server.child.wait().expect("reap");
    let before = acknowledged.load(Ordering::Relaxed);
    let server = Server::start(&setup);
    let receipts: Vec<(String, u64)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    server.stop();
    println!(
        "killed after {before} acknowledged emits; all {} acknowledged in the end",
        receipts.len()
    );

    let ledger = vellum::Ledger::open_read_only(setup.dir.path().join("audit.db")).expect("open");
    let mut entries = Vec::new();
    let mut query = Query {
        limit: 10_000,
        ..Query::default()
    };
    loop {
        let page = ledger.query(&query).expect("query");
        entries.extend(page.entries);
        match page.next_cursor {
            Some(cursor) => query = query.with_cursor(&cursor).expect("cursor"),
            None => break,
        }
    }
    assert_eq!(entries.len(), CLIENTS * EMITS, "every event exactly once");
    let by_id: std::collections::HashMap<&str, u64> = entries
        .iter()
        .map(|e| (e.event.id.as_str(), e.seq))
        .collect();
    assert_eq!(by_id.len(), CLIENTS * EMITS, "no event id twice");
    for (id, seq) in &receipts {
        assert_eq!(
            by_id.get(id.as_str()),
            Some(seq),
            "the 200 for {id} names its entry"
        );
    }
    let (last, _) = ledger
        .checkpoints()
        .expect("checkpoints")
        .pop()
        .expect("a checkpoint");
    assert_eq!(
        last.size,
        entries.len() as u64,
        "SIGTERM signed a final checkpoint"
    );
    drop(ledger);
    common::assert_verifies(&setup.dir.path().join("audit.db"));
}

#[test]
fn a_regular_file_at_the_socket_path_is_never_replaced() {
    let setup = setup("127.0.0.1:0");
    let path = setup.dir.path().join("vellum.sock");
    std::fs::write(&path, "precious").expect("write");
    let mut child = Command::new(VELLUM)
        .args(["serve", "--config"])
        .arg(setup.dir.path().join("sink.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vellum serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vellum serve started over a regular file at its socket path");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
        .expect("read stdout");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a socket"), "{stderr}");
    // Every listener is bound before any is announced: the TCP one never served.
    assert!(!stdout.contains("listening"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "precious"
    );
}

#[test]
fn sigterm_with_a_stalled_client_cuts_it_at_the_drain_deadline_and_exits_0() {
    use std::io::Write;
    let setup = setup_with(
        "127.0.0.1:0",
        "drain-timeout-secs = 2\nheader-read-timeout-secs = 600\nbody-read-timeout-secs = 600",
    );
    let server = Server::start(&setup);
    let agent = ureq::Agent::new_with_defaults();
    let bearer = format!("Bearer {}", setup.token_a);
    let event = r#"{"id":"acked","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call"}"#;
    let seq = emit_until_recorded(&agent, &format!("{}/v1/emit", server.url), &bearer, event);
    // A request whose body never ends, and headers that never end.
    let addr = server.url.trim_start_matches("http://");
    let mut stalled = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stalled,
        "POST /v1/emit HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    )
    .expect("send");
    let mut half = std::net::TcpStream::connect(addr).expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    println!("stopped in {took:?} with two stalled clients (drain deadline 2 s)");
    assert!(took < Duration::from_secs(25), "the stop took {took:?}");
    // The final checkpoint covers the acknowledged event, and the ledger verifies.
    let ledger = vellum::Ledger::open_read_only(setup.dir.path().join("audit.db")).expect("open");
    let (last, _) = ledger
        .checkpoints()
        .expect("checkpoints")
        .pop()
        .expect("one");
    assert!(
        last.size > seq,
        "checkpoint {} does not cover {seq}",
        last.size
    );
    drop((stalled, half));
    common::assert_verifies(&setup.dir.path().join("audit.db"));
}

/// Runs the outside tlog-tiles client (Go, `tests/clients/tlog/`) for entry `index`;
/// returns its exit status and output.
fn go_client(base: &str, vkey: &str, index: u64, token: Option<&str>) -> (bool, String) {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("tests/clients/tlog/run.sh"))
        .args([base, vkey.trim(), &index.to_string()])
        .args(token);
    let out = command.output().expect("run the Go tlog client");
    assert_ne!(
        out.status.code(),
        Some(2),
        "the Go client cannot be installed here: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_outside_go_client_proves_entries_from_served_and_exported_tiles() {
    let setup = setup("127.0.0.1:0");
    let server = Server::start(&setup);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let bearer = format!("Bearer {}", setup.token_a);
    // 300 entries: a full bundle, a partial one, and a level-1 tile.
    for batch in 0..3 {
        let events: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    r#"{{"id":"t-{batch}-{i}","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","payload":{{"n":{i}}}}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let status = agent
            .post(format!("{}/v1/emit-batch", server.url))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .send(body)
            .expect("emit")
            .status();
        assert_eq!(status, 200);
    }
    let get = |path: &str, bearer: &str| {
        let mut response = agent
            .get(format!("{}{path}", server.url))
            .header("authorization", bearer)
            .call()
            .expect("GET");
        let cache = response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        (response.status().as_u16(), cache, body)
    };
    // The server checkpoints every second; wait for one covering all 300.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = get("/tlog/checkpoint", &bearer);
        let text = String::from_utf8_lossy(&body).to_string();
        if status == 200 && text.lines().nth(1) == Some("300") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of 300: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, _, vkey) = get("/v1/key", &bearer);
    let vkey = String::from_utf8(vkey).expect("key");
    let base = format!("{}/tlog", server.url);
    for index in [0, 255, 256, 299] {
        let (ok, out) = go_client(&base, &vkey, index, Some(&setup.token_a));
        assert!(ok && out.starts_with(&format!("ok {index} 300")), "{out}");
    }
    // Full tiles are immutable, partial ones are not; a tenant's token reads no tiles
    // (they hold every tenant's envelopes), and a path that is no tile is a 404.
    let (status, cache, body) = get("/tlog/tile/0/000", &bearer);
    assert_eq!((status, body.len()), (200, 256 * 32));
    assert!(cache.unwrap_or_default().contains("immutable"));
    let (status, cache, _) = get("/tlog/tile/entries/001.p/44", &bearer);
    assert_eq!((status, cache.as_deref()), (200, Some("no-cache")));
    let beta = format!("Bearer {}", setup.token_b);
    assert_eq!(get("/tlog/checkpoint", &beta).0, 403);
    assert_eq!(get("/tlog/tile/0/000", &beta).0, 403);
    assert_eq!(get("/tlog/tile/0/002", &bearer).0, 404);
    assert_eq!(get("/tlog/tile/0/000.p/0", &bearer).0, 404);
    assert_eq!(get("/tlog/tile/99/000", &bearer).0, 404);
    server.stop();

    // The same files for a static host, proven from the directory.
    let tiles = setup.dir.path().join("tiles");
    let export = || {
        Command::new(VELLUM)
            .args(["export", "--ledger"])
            .arg(setup.dir.path().join("audit.db"))
            .arg("--tiles")
            .arg(&tiles)
            .output()
            .expect("run vellum export --tiles")
    };
    let out = export();
    assert!(out.status.success(), "{out:?}");
    let dir = tiles.to_string_lossy().to_string();
    let (ok, out) = go_client(&dir, &vkey, 299, None);
    assert!(ok, "{out}");
    // Run again: the full tiles stay as they were.
    let again = export();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("2 full tiles kept"), "{stderr}");
    // A static host that alters an entry is caught by the client.
    let bundle = tiles.join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).expect("bundle");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bundle, bytes).expect("write");
    let (ok, out) = go_client(&dir, &vkey, 255, None);
    assert!(!ok && out.contains("does not verify"), "{out}");
}
