//! `vellum monitor`: follows a log's published checkpoints through its C2SP tiles (over
//! HTTP, or a directory a static host serves) and turns "detectable" into "detected". Each
//! check verifies the checkpoint with the log's key, proves from the tiles that the log
//! extends the checkpoint it saw last, and, with a witness policy, that the checkpoint is
//! cosigned by its quorum. It alerts on:
//! - `key-change`: the checkpoint does not verify with the pinned key;
//! - `rollback`: the log is smaller than what it saw;
//! - `fork`: the log's first entries no longer have the root it saw;
//! - `unwitnessed`: the checkpoint misses the quorum;
//! - `stall`: no new checkpoint for longer than `--stall-secs`.
//!
//! Alerts go to standard error, to `--alert-command` (`VELLUM_ALERT` and
//! `VELLUM_ALERT_DETAIL` in its environment) and to `--metrics-file` (Prometheus text, for
//! node_exporter's textfile collector); `--once` exits 7 after an alert. The state file
//! keeps the last good checkpoint; it moves forward only after a check passed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use vellum::ledger::Hash;
use vellum::ledger::checkpoint::verify_checkpoint;
use vellum::ledger::cosignature::split_cosignatures;
use vellum::ledger::tiles::prefix_root;
use vellum::ledger::witness_policy::WitnessPolicy;

use super::exit;

/// Arguments of `vellum monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    /// The log's tiles: a URL prefix (`https://host/tlog`) or a directory.
    #[arg(long)]
    url: String,
    /// The log's verifier key file, pinned.
    #[arg(long)]
    key: PathBuf,
    /// Where the last good checkpoint is kept between runs (created when missing).
    #[arg(long)]
    state: PathBuf,
    /// Require the checkpoint's cosignatures to meet this witness policy.
    #[arg(long)]
    witness_policy: Option<PathBuf>,
    /// Alert when no new checkpoint appeared for this many seconds.
    #[arg(long)]
    stall_secs: Option<u64>,
    /// A shell command run on each alert.
    #[arg(long)]
    alert_command: Option<String>,
    /// Write Prometheus metrics (text format) to this file after each check.
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// A bearer token for the tiles (`vellum serve` asks for an admin token).
    #[arg(long)]
    token: Option<String>,
    /// Check once and exit: 0 when all is well, 7 after an alert.
    #[arg(long)]
    once: bool,
    /// Seconds between checks.
    #[arg(long, default_value_t = 60)]
    interval_secs: u64,
}

/// What the monitor keeps between checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The last good checkpoint's size and root (base64).
    size: u64,
    root: String,
    /// When the size last grew (or the monitor started), POSIX seconds.
    grew_at: u64,
}

/// One alert.
struct Alert {
    kind: &'static str,
    detail: String,
}

/// `vellum monitor`.
pub fn monitor(args: MonitorArgs) -> Result<u8> {
    let vkey = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read the log's key {}", args.key.display()))?;
    let policy = args
        .witness_policy
        .as_deref()
        .map(WitnessPolicy::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut alerts_total = 0u64;
    loop {
        let fetch = |path: &str| fetch(&agent, &args.url, args.token.as_deref(), path);
        let (alerts, size) = match check(&args, vkey.trim(), policy.as_ref(), &fetch) {
            Ok(outcome) => outcome,
            Err(e) => {
                // The log could not be read at all: a fetch error, not an alert (a stall
                // alert covers a log that stays unreachable).
                eprintln!("vellum monitor: {e:#}");
                (Vec::new(), None)
            }
        };
        for alert in &alerts {
            eprintln!("vellum monitor: ALERT {}: {}", alert.kind, alert.detail);
            if let Some(command) = &args.alert_command {
                let status = std::process::Command::new("sh")
                    .args(["-c", command])
                    .env("VELLUM_ALERT", alert.kind)
                    .env("VELLUM_ALERT_DETAIL", &alert.detail)
                    .status();
                if !status.as_ref().is_ok_and(|s| s.success()) {
                    eprintln!("vellum monitor: the alert command failed: {status:?}");
                }
            }
        }
        alerts_total += alerts.len() as u64;
        if let Some(file) = &args.metrics_file {
            write_metrics(file, size, &alerts, alerts_total)?;
        }
        if args.once {
            return Ok(match alerts.is_empty() {
                true => exit::OK,
                false => exit::TAMPERED,
            });
        }
        std::thread::sleep(Duration::from_secs(args.interval_secs.max(1)));
    }
}

/// One check: the alerts it raised and the checkpoint size it saw.
fn check(
    args: &MonitorArgs,
    vkey: &str,
    policy: Option<&WitnessPolicy>,
    fetch: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Vec<Alert>, Option<u64>)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut state = match std::fs::read_to_string(&args.state) {
        Ok(text) => Some(
            serde_json::from_str::<State>(&text)
                .with_context(|| format!("the state file {} is damaged", args.state.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(format!("reading {}", args.state.display())),
    };
    let note = String::from_utf8(fetch("checkpoint").map_err(anyhow::Error::msg)?)
        .context("the checkpoint is not UTF-8")?;
    let mut alerts = Vec::new();
    let alert = |kind, detail: String| Alert { kind, detail };
    let checkpoint = match verify_checkpoint(&note, vkey) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            alerts.push(alert(
                "key-change",
                format!("the checkpoint does not verify with the pinned key: {e}"),
            ));
            return Ok((alerts, None));
        }
    };
    let (size, root) = (checkpoint.size, checkpoint.root);
    if let Some(policy) = policy {
        let (log_note, lines) = split_cosignatures(&note, &checkpoint.origin);
        let quorum = policy.check(&log_note, &lines);
        if !quorum.met {
            alerts.push(alert(
                "unwitnessed",
                format!(
                    "checkpoint {size} misses the witness quorum {}: no valid cosignature by {}",
                    policy.describe(),
                    quorum.missing.join(", ")
                ),
            ));
        }
    }
    match &mut state {
        None => {}
        Some(seen) if size < seen.size => alerts.push(alert(
            "rollback",
            format!(
                "the log shows {size} entries, fewer than the {} seen",
                seen.size
            ),
        )),
        Some(seen) => {
            let old = Hash::from_base64(&seen.root).context("the state's root is damaged")?;
            match prefix_root(fetch, size, root, seen.size) {
                Ok(prefix) if prefix == old => {}
                Ok(_) => alerts.push(alert(
                    "fork",
                    format!(
                        "the first {} entries of the log of {size} no longer have the root seen",
                        seen.size
                    ),
                )),
                Err(e) => alerts.push(alert(
                    "fork",
                    format!(
                        "the tiles do not prove the log of {size} extends the {} seen: {e}",
                        seen.size
                    ),
                )),
            }
        }
    }
    let stalled = state.as_ref().filter(|s| s.size == size).and_then(|s| {
        let quiet = now.saturating_sub(s.grew_at);
        args.stall_secs
            .filter(|limit| quiet > *limit)
            .map(|_| quiet)
    });
    if let Some(quiet) = stalled {
        alerts.push(alert(
            "stall",
            format!("no new checkpoint for {quiet} s (still {size} entries)"),
        ));
    }
    let trusted = alerts
        .iter()
        .all(|a| matches!(a.kind, "stall" | "unwitnessed"));
    if trusted {
        let grew_at = match &state {
            Some(s) if s.size == size => s.grew_at,
            _ => now,
        };
        let next = State {
            size,
            root: root.to_base64(),
            grew_at,
        };
        save(&args.state, &next)?;
    }
    Ok((alerts, Some(size)))
}

fn save(path: &Path, state: &State) -> Result<()> {
    replace_file(path, &serde_json::to_vec(state)?, "the state")
}

/// Replaces `path` with `bytes` atomically (a temporary file beside it, renamed), so a
/// reader never sees half a file.
fn replace_file(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.persist(path)
        .with_context(|| format!("writing {what} {}", path.display()))?;
    Ok(())
}

/// Reads one file of the tiled log.
fn fetch(
    agent: &ureq::Agent,
    base: &str,
    token: Option<&str>,
    path: &str,
) -> Result<Vec<u8>, String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        let file = Path::new(base).join(path);
        return std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()));
    }
    let url = format!("{}/{path}", base.trim_end_matches('/'));
    let mut request = agent.get(&url);
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| format!("GET {url}: {e}"))?;
    match status {
        200 => Ok(body),
        other => Err(format!("GET {url}: HTTP {other}")),
    }
}

/// Writes the metrics in the Prometheus text format (atomically, for a textfile
/// collector).
fn write_metrics(file: &Path, size: Option<u64>, alerts: &[Alert], total: u64) -> Result<()> {
    let mut text = String::from(
        "# HELP vellum_monitor_alerts_total Alerts raised since the monitor started.\n\
         # TYPE vellum_monitor_alerts_total counter\n",
    );
    text.push_str(&format!("vellum_monitor_alerts_total {total}\n"));
    text.push_str(
        "# HELP vellum_monitor_alert Whether the last check raised this alert.\n\
         # TYPE vellum_monitor_alert gauge\n",
    );
    for kind in ["key-change", "rollback", "fork", "unwitnessed", "stall"] {
        let on = u8::from(alerts.iter().any(|a| a.kind == kind));
        text.push_str(&format!("vellum_monitor_alert{{kind=\"{kind}\"}} {on}\n"));
    }
    if let Some(size) = size {
        text.push_str(
            "# HELP vellum_monitor_checkpoint_size The size of the checkpoint last seen.\n\
             # TYPE vellum_monitor_checkpoint_size gauge\n",
        );
        text.push_str(&format!("vellum_monitor_checkpoint_size {size}\n"));
    }
    replace_file(file, text.as_bytes(), "the metrics")
}
