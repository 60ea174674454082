//! Credentials on a generated corpus: every format of `CREDENTIALS` (random keys of each
//! issuer's shape), in the shapes agent telemetry really has — a model's answer in prose,
//! tool arguments as JSON inside a string, `env` and `.env` output in a tool's stdout, a code
//! snippet, YAML, a tool message, a bare value, a real JSON field — with neutral names
//! around them, so the format is what is detected. Then the key rules inside text, and the
//! identifiers agent telemetry is full of, which must survive. Prints recall per format and
//! the share of identifiers kept; asserts the floors of the redaction issue.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use fake::rand::rngs::StdRng;
use fake::rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use vellum_redact_core::{CREDENTIALS, Config, Redactor};

/// Keys per format and shape.
const SEEDS: u64 = 4;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BECH32: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";

fn pick(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A random key of `format`'s shape.
fn credential(format: &str, rng: &mut StdRng) -> String {
    let mut p = |alphabet: &[u8], n: usize| pick(rng, alphabet, n);
    match format {
        "openai-key" => match p(HEX, 1).as_str() {
            "0" | "1" | "2" | "3" => {
                format!("sk-proj-{}T3BlbkFJ{}", p(URLSAFE, 74), p(URLSAFE, 74))
            }
            "4" | "5" | "6" => format!("sk-svcacct-{}", p(URLSAFE, 120)),
            "7" | "8" => format!("sk-admin-{}", p(URLSAFE, 100)),
            "9" | "a" => format!("sk-{}T3BlbkFJ{}", p(ALNUM, 20), p(ALNUM, 20)),
            _ => format!("sk-{}", p(ALNUM, 48)),
        },
        "anthropic-key" => match p(HEX, 1).as_str() < "8" {
            true => format!("sk-ant-api03-{}AA", p(URLSAFE, 93)),
            false => format!("sk-ant-admin01-{}AA", p(URLSAFE, 93)),
        },
        "groq-key" => format!("gsk_{}", p(ALNUM, 52)),
        "xai-key" => format!("xai-{}", p(ALNUM, 80)),
        "perplexity-key" => format!("pplx-{}", p(ALNUM, 48)),
        "replicate-key" => format!("r8_{}", p(ALNUM, 37)),
        "huggingface-token" => format!("hf_{}", p(ALNUM, 34)),
        "langsmith-key" => format!("lsv2_pt_{}_{}", p(HEX, 32), p(HEX, 10)),
        "pinecone-key" => format!("pcsk_{}_{}", p(ALNUM, 5), p(ALNUM, 64)),
        "openrouter-key" => format!("sk-or-v1-{}", p(HEX, 64)),
        "deepseek-key" => format!("sk-{}", p(HEX, 32)),
        "elevenlabs-key" => format!("sk_{}", p(HEX, 48)),
        "fireworks-key" => format!("fw_{}", p(ALNUM, 24)),
        "tavily-key" => format!("tvly-dev-{}", p(ALNUM, 32)),
        "github-token" => match p(HEX, 1).as_str() < "8" {
            true => format!("ghp_{}", p(ALNUM, 36)),
            false => format!("github_pat_11{}_{}", p(UPPER, 20), p(ALNUM, 59)),
        },
        "gitlab-token" => format!("glpat-{}", p(URLSAFE, 20)),
        "bitbucket-token" => format!("ATBB{}", p(ALNUM, 32)),
        "atlassian-token" => format!("ATATT3xFfGF0{}", p(URLSAFE, 180)),
        "npm-token" => format!("npm_{}", p(ALNUM, 36)),
        "pypi-token" => format!("pypi-AgEIcHlwaS5vcmc{}", p(URLSAFE, 70)),
        "rubygems-key" => format!("rubygems_{}", p(HEX, 48)),
        "crates-io-token" => format!("cio{}", p(ALNUM, 32)),
        "docker-hub-token" => format!("dckr_pat_{}", p(URLSAFE, 27)),
        "nuget-key" => format!("oy2{}", p(b"abcdefghijklmnopqrstuvwxyz0123456789", 43)),
        "aws-access-key" => format!("AKIA{}", p(UPPER, 16)),
        "azure-storage-key" => format!(
            "DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={}==;EndpointSuffix=core.windows.net",
            p(HEX, 6),
            p(B64, 86)
        ),
        "azure-sas-signature" => format!(
            "https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&sp=r&sig={}%3D",
            p(ALNUM, 43)
        ),
        "azure-client-secret" => format!("{}8Q~{}", p(ALNUM, 3), p(URLSAFE, 34)),
        "google-api-key" => format!("AIza{}", p(URLSAFE, 35)),
        "google-oauth-secret" => format!("GOCSPX-{}", p(URLSAFE, 28)),
        "digitalocean-token" => format!("dop_v1_{}", p(HEX, 64)),
        "alibaba-access-key" => format!("LTAI{}", p(ALNUM, 20)),
        "databricks-token" => format!("dapi{}", p(HEX, 32)),
        "heroku-key" => format!("HRKU-AA{}", p(URLSAFE, 58)),
        "cloudflare-origin-key" => format!("v1.0-{}-{}", p(HEX, 24), p(HEX, 146)),
        "supabase-key" => format!("sbp_{}", p(HEX, 40)),
        "flyio-token" => format!("fo1_{}", p(URLSAFE, 43)),
        "vercel-token" => format!("vcp_{}", p(ALNUM, 56)),
        "slack-token" => match p(HEX, 1).as_str() < "8" {
            true => format!(
                "xoxb-{}-{}-{}",
                p(b"0123456789", 12),
                p(b"0123456789", 13),
                p(ALNUM, 24)
            ),
            false => format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                p(UPPER, 10),
                p(UPPER, 10),
                p(ALNUM, 24)
            ),
        },
        "discord-webhook" => format!(
            "https://discord.com/api/webhooks/{}/{}",
            p(b"0123456789", 19),
            p(URLSAFE, 68)
        ),
        "discord-bot-token" => format!("MT{}.{}.{}", p(ALNUM, 24), p(URLSAFE, 6), p(URLSAFE, 38)),
        "telegram-bot-token" => {
            format!("{}:AA{}", p(b"0123456789", 10), p(URLSAFE, 33))
        }
        "teams-webhook" => format!(
            "https://contoso.webhook.office.com/webhookb2/{}-{}@{}/IncomingWebhook/{}/{}",
            p(HEX, 8),
            p(HEX, 4),
            p(HEX, 8),
            p(HEX, 32),
            p(HEX, 8)
        ),
        "twilio-key" => format!("SK{}", p(HEX, 32)),
        "sendgrid-key" => format!("SG.{}.{}", p(URLSAFE, 22), p(URLSAFE, 43)),
        "mailgun-key" => format!("key-{}", p(HEX, 32)),
        "mailchimp-key" => format!("{}-us{}", p(HEX, 32), p(b"123456789", 1)),
        "stripe-key" => format!("sk_live_{}", p(ALNUM, 99)),
        "square-token" => format!("EAAA{}", p(URLSAFE, 60)),
        "braintree-token" => format!(
            "access_token$production${}${}",
            p(b"abcdefghijklmnopqrstuvwxyz0123456789", 16),
            p(HEX, 32)
        ),
        "shopify-token" => format!("shpat_{}", p(HEX, 32)),
        "flutterwave-key" => format!("FLWSECK-{}-X", p(HEX, 32)),
        "newrelic-key" => format!("NRAK-{}", p(UPPER, 27)),
        "grafana-token" => format!("glsa_{}_{}", p(ALNUM, 32), p(HEX, 8)),
        "sentry-token" => format!("sntrys_eyJ{}", p(URLSAFE, 80)),
        "posthog-key" => format!("phx_{}", p(ALNUM, 43)),
        "dynatrace-token" => format!("dt0c01.{}.{}", p(UPPER, 24), p(UPPER, 64)),
        "vault-token" => format!("hvs.{}", p(URLSAFE, 90)),
        "terraform-token" => format!("{}.atlasv1.{}", p(ALNUM, 14), p(URLSAFE, 67)),
        "doppler-token" => format!("dp.pt.{}", p(ALNUM, 43)),
        "onepassword-token" => format!("ops_eyJ{}", p(URLSAFE, 300)),
        "age-secret-key" => format!("AGE-SECRET-KEY-1{}", p(BECH32, 58)),
        "linear-key" => format!("lin_api_{}", p(ALNUM, 40)),
        "notion-token" => format!("ntn_{}{}", p(b"0123456789", 11), p(ALNUM, 35)),
        "airtable-token" => format!("pat{}.{}", p(ALNUM, 14), p(HEX, 64)),
        "postman-key" => format!("PMAK-{}-{}", p(HEX, 24), p(HEX, 34)),
        "figma-token" => format!("figd_{}", p(URLSAFE, 40)),
        "asana-token" => format!("1/{}:{}", p(b"0123456789", 16), p(HEX, 32)),
        other => panic!("no generator for format `{other}`: add one with its entry"),
    }
}

/// 12 characters from the middle of the secret part of `key` (for the formats that carry
/// more than the secret: the key or signature of an Azure string).
fn probe<'k>(format: &str, key: &'k str) -> &'k str {
    let secret = match format {
        "azure-storage-key" => key.split("AccountKey=").nth(1).unwrap_or(key),
        "azure-sas-signature" => key.split("sig=").nth(1).unwrap_or(key),
        _ => key,
    };
    &secret[secret.len() / 2 - 6..secret.len() / 2 + 6]
}

/// The shapes a credential reaches the ledger in: a payload, and the string that must not
/// hold the key after redaction (its path in the payload).
fn shapes(key: &str) -> Vec<(&'static str, Value)> {
    let args = json!({"url": "https://api.example.com/v1/items", "headers": {"X-Request": key}})
        .to_string();
    vec![
        (
            "prose",
            json!({"role": "assistant", "content": format!("Sure. Use {key} as the credential for the staging API; it expires next week.")}),
        ),
        (
            "tool-arguments",
            json!({"tool": "http.request", "arguments": args}),
        ),
        (
            "env-output",
            json!({"stdout": format!("HOME=/home/agent\nPATH=/usr/local/bin:/usr/bin\nSERVICE_VALUE_7={key}\nLANG=C.UTF-8\n"), "exit_code": 0}),
        ),
        (
            "code",
            json!({"file": "client.py", "content": format!("import client\n\nc = client.Client(endpoint=\"https://x\", value=\"{key}\")\nprint(c.ping())\n")}),
        ),
        (
            "yaml",
            json!({"stdout": format!("service:\n  name: billing\n  upstream: {key}\n  retries: 3\n")}),
        ),
        (
            "tool-message",
            json!({"role": "tool", "content": format!("{{\"result\": \"{key}\", \"status\": \"ok\"}}")}),
        ),
        ("bare", json!({"value": key})),
        (
            "field",
            json!({"settings": {"upstream": key, "region": "eu-west-1"}}),
        ),
    ]
}

fn redacted(redactor: &Redactor, mut payload: Value) -> String {
    redactor.redact_json(&mut payload, &mut |_, v| format!("pseu:{}", v.len()));
    payload.to_string()
}

#[test]
fn every_credential_format_is_caught_in_every_shape() {
    let redactor = Redactor::new(&Config::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    let mut formats: Vec<&str> = CREDENTIALS.iter().map(|c| c.name).collect();
    formats.dedup();
    assert!(formats.len() >= 60, "{} formats", formats.len());
    let (mut total, mut caught_all) = (0usize, 0usize);
    let mut weakest = Vec::new();
    for format in &formats {
        let (mut planted, mut caught) = (0usize, 0usize);
        for _ in 0..SEEDS {
            let key = credential(format, &mut rng);
            for (shape, payload) in shapes(&key) {
                planted += 1;
                let out = redacted(&redactor, payload);
                // The key's secret part must be gone: 12 characters from its middle must
                // not appear any more.
                let probe = probe(format, &key);
                if out.contains(probe) {
                    if weakest.len() < 20 {
                        weakest.push(format!("{format} in {shape}: {out}"));
                    }
                } else {
                    caught += 1;
                }
            }
        }
        let recall = caught as f64 / planted as f64;
        println!("{format:<24} recall {recall:.3} ({caught}/{planted})");
        assert!(
            recall >= 0.95,
            "{format}: recall {recall:.3}; missed: {weakest:#?}"
        );
        total += planted;
        caught_all += caught;
    }
    let recall = caught_all as f64 / total as f64;
    println!(
        "credential recall {recall:.4} over {total} planted keys in {} formats",
        formats.len()
    );
    assert!(recall >= 0.99, "recall {recall:.4}; missed: {weakest:#?}");
}

/// What agent telemetry carries that looks random but is not secret.
fn identifiers(rng: &mut StdRng) -> Vec<String> {
    let mut p = |alphabet: &[u8], n: usize| pick(rng, alphabet, n);
    let crockford = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let pod = b"bcdfghjklmnpqrstvwxz2456789";
    vec![
        format!("chatcmpl-{}", p(ALNUM, 29)),
        format!("call_{}", p(ALNUM, 24)),
        format!("resp_{}", p(HEX, 48)),
        format!("file-{}", p(ALNUM, 22)),
        format!("asst_{}", p(ALNUM, 24)),
        format!("thread_{}", p(ALNUM, 24)),
        format!("run_{}", p(ALNUM, 24)),
        format!("msg_01{}", p(ALNUM, 22)),
        format!("toolu_01{}", p(ALNUM, 22)),
        format!("req_011C{}", p(ALNUM, 20)),
        "claude-3-5-sonnet-20241022".to_string(),
        "gpt-4o-2024-08-06".to_string(),
        "gemini-2.0-flash-001".to_string(),
        format!(
            "{}-{}-4{}-a{}-{}",
            p(HEX, 8),
            p(HEX, 4),
            p(HEX, 3),
            p(HEX, 3),
            p(HEX, 12)
        ),
        format!("01{}", p(crockford, 24)),
        p(HEX, 40),
        format!("sha256:{}", p(HEX, 64)),
        p(HEX, 32),
        p(HEX, 16),
        format!("api-{}-{}", p(pod, 10), p(pod, 5)),
        format!("cus_{}", p(ALNUM, 14)),
        format!("pi_3{}", p(ALNUM, 23)),
        format!("ch_3{}", p(ALNUM, 23)),
        format!(
            "1.{}.{}+build.{}",
            p(b"0123456789", 1),
            p(b"0123456789", 2),
            p(HEX, 7)
        ),
        format!("v2.3.1-rc.1+{}", p(HEX, 12)),
        format!("ami-{}", p(HEX, 17)),
        format!("i-{}", p(HEX, 17)),
        format!("arn:aws:iam::{}:role/agent-runner", p(b"0123456789", 12)),
        format!(
            "projects/{}/locations/us-central1",
            p(b"abcdefghijklmnopqrstuvwxyz", 10)
        ),
    ]
}

#[test]
fn the_identifiers_agent_telemetry_is_full_of_survive() {
    let redactor = Redactor::new(&Config::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let (mut total, mut kept) = (0usize, 0usize);
    let mut damaged = Vec::new();
    for _ in 0..40 {
        for id in identifiers(&mut rng) {
            for payload in [
                json!({"id": id, "object": "chat.completion"}),
                json!({"content": format!("Created {id} for the run; see the trace.")}),
                json!({"arguments": json!({"ref": id, "limit": 10}).to_string()}),
                json!({"stdout": format!("NAME=agent\nRESOURCE_ID={id}\n")}),
            ] {
                total += 1;
                let out = redacted(&redactor, payload);
                if out.contains(&id) {
                    kept += 1;
                } else if damaged.len() < 20 {
                    damaged.push(out);
                }
            }
        }
    }
    let share = kept as f64 / total as f64;
    println!("identifiers kept {share:.4} ({kept}/{total})");
    assert!(share >= 0.99, "kept {share:.4}; damaged: {damaged:#?}");
}

#[test]
fn key_rules_apply_inside_text_lines_and_embedded_json() {
    let redactor = Redactor::new(&Config::default()).unwrap();
    let hidden = "hunter2-Correct-Horse";
    for (shape, text) in [
        (
            "env",
            format!("PATH=/usr/bin\nDB_PASSWORD={hidden}\nHOME=/root"),
        ),
        ("export", format!("export SERVICE_API_KEY={hidden}")),
        ("dotenv quoted", format!("STRIPE_SECRET=\"{hidden}\"\n")),
        (
            "header",
            format!("GET / HTTP/1.1\r\nX-Api-Key: {hidden}\r\n"),
        ),
        (
            "code",
            format!("client = Client(api_key=\"{hidden}\", timeout=3)"),
        ),
        (
            "code single",
            format!("conn = connect(password='{hidden}')"),
        ),
        ("yaml", format!("db:\n  user: app\n  password: {hidden}\n")),
        (
            "python dict",
            format!("{{'user': 'app', 'secret': '{hidden}'}}"),
        ),
        (
            "json in text",
            format!("calling tool with {{\"token\": \"{hidden}\"}} now"),
        ),
    ] {
        let out = redacted(&redactor, json!({ "text": text }));
        assert!(!out.contains(hidden), "{shape}: {out}");
        assert!(out.contains("[SECRET]"), "{shape}: {out}");
    }
    // JSON inside a string is redacted as JSON: the string stays valid JSON, numbers under
    // a secret's name become null, other values are kept.
    let args = r#"{"user": "app", "password": "s3cr3t!", "pin": 4321, "retries": 3}"#;
    let out: Value =
        serde_json::from_str(&redacted(&redactor, json!({ "arguments": args }))).unwrap();
    let inner: Value = serde_json::from_str(out["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        inner,
        json!({"user": "app", "password": "[SECRET]", "pin": 4321, "retries": 3})
    );
    // Harmless keys and placeholders are left alone.
    for text in [
        "max_tokens=4096",
        "prompt_tokens: 120, completion_tokens: 33",
        "token_count=7",
        "password: null",
        "API_KEY=${API_KEY}",
        "password_policy: strict",
        "note: the password was rotated",
    ] {
        let out = redacted(&redactor, json!({ "text": text }));
        assert_eq!(out, json!({ "text": text }).to_string(), "{text}");
    }
}

#[test]
fn a_user_adds_a_format_in_configuration() {
    let config = Config::parse(
        "[[rules]]\nname = \"acme-key\"\npattern = '\\bacme_live_[A-Za-z0-9]{32}\\b'\n",
    )
    .unwrap();
    let redactor = Redactor::new(&config).unwrap();
    let key = format!("acme_live_{}", "Ab3".repeat(10) + "xy");
    let out = redacted(
        &redactor,
        json!({ "log": format!("using {key} for the call") }),
    );
    assert_eq!(
        out,
        json!({"log": "using [ACME_KEY] for the call"}).to_string()
    );
}
