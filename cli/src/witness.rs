//! `vellum witness init` and `vellum witness serve`: a C2SP tlog-witness for ledgers kept by
//! someone else (see the `vellum-server` crate's `witness` module).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use vellum::ledger::cosignature::Cosigner;
use vellum_server::listen::ConnectionLimits;
use vellum_server::witness::Witness;
use vellum_server::witness::state::WitnessState;

use super::exit;

/// `vellum witness …`.
#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Create a witness: its key pair (KEY with mode 0600, and KEY's `.pub`) and its empty
    /// state file; prints the verifier key to give to the logs it cosigns.
    Init {
        /// The witness's name in its cosignatures (a schema-less URL, no spaces or `+`).
        #[arg(long)]
        name: String,
        /// The signing key file to create.
        #[arg(long)]
        key: PathBuf,
        /// The state file to create (the latest checkpoint of each log).
        #[arg(long)]
        state: PathBuf,
    },
    /// Serve `POST /add-checkpoint` until SIGTERM or SIGINT.
    Serve {
        /// The witness's signing key file.
        #[arg(long)]
        key: PathBuf,
        /// The state file made by `vellum witness init`.
        #[arg(long)]
        state: PathBuf,
        /// A log's verifier key file (its name is the log's origin); repeatable.
        #[arg(long = "log-key", required = true)]
        log_keys: Vec<PathBuf>,
        /// The address to listen on (plain HTTP; put TLS in front to expose it).
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
        /// The URL path prefix of the witness's routes (e.g. `/witness`).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Evidence rows kept (refused checkpoints the log signed); the oldest are pruned
        /// first beyond this.
        #[arg(long, default_value_t = vellum_server::witness::state::DEFAULT_MAX_EVIDENCE)]
        max_evidence: u64,
        /// Time for a request's headers, and for an idle connection's next request.
        #[arg(long, default_value_t = 15)]
        header_read_timeout_secs: u64,
        /// On SIGTERM or SIGINT, time for requests in flight; then connections are cut.
        #[arg(long, default_value_t = 30)]
        drain_timeout_secs: u64,
    },
    /// Print the evidence a witness kept (refused checkpoints its logs signed: forks,
    /// rollbacks, larger trees without a valid proof), one JSON object per line.
    Evidence {
        /// The witness's state file.
        #[arg(long)]
        state: PathBuf,
    },
}

/// Runs a witness command.
pub fn witness(command: WitnessCommand) -> Result<u8> {
    match command {
        WitnessCommand::Init { name, key, state } => {
            let public = key.with_extension("pub");
            anyhow::ensure!(
                !key.exists() && !public.exists(),
                "{} or {} already exists; refusing to overwrite a witness key",
                key.display(),
                public.display()
            );
            let (skey, vkey) = Cosigner::generate(&name).map_err(anyhow::Error::msg)?;
            WitnessState::create(&state)?;
            vellum::ledger::checkpoint::write_keys(&key, &public, (&skey, &vkey))?;
            eprintln!(
                "created witness {name}: signing key {} (mode 0600), verifier key {}, state {}",
                key.display(),
                public.display(),
                state.display()
            );
            say!("{vkey}");
            Ok(exit::OK)
        }
        WitnessCommand::Serve {
            key,
            state,
            log_keys,
            listen,
            prefix,
            max_evidence,
            header_read_timeout_secs,
            drain_timeout_secs,
        } => {
            for (name, secs) in [
                ("--header-read-timeout-secs", header_read_timeout_secs),
                ("--drain-timeout-secs", drain_timeout_secs),
            ] {
                anyhow::ensure!(
                    (1..=3600).contains(&secs),
                    "{name} must be between 1 and 3600, not {secs}"
                );
            }
            anyhow::ensure!(
                prefix.is_empty() || prefix.starts_with('/'),
                "--prefix must be empty or start with `/`"
            );
            let cosigner = Cosigner::parse(&read(&key, "witness signing key")?)
                .map_err(anyhow::Error::msg)
                .with_context(|| key.display().to_string())?;
            let log_keys = log_keys
                .iter()
                .map(|file| read(file, "log verifier key"))
                .collect::<Result<Vec<_>>>()?;
            let witness =
                Witness::open(cosigner, &log_keys, &state)?.with_max_evidence(max_evidence);
            eprintln!("witness key: {}", witness.verifier_key());
            let limits = ConnectionLimits {
                header_read_timeout: Duration::from_secs(header_read_timeout_secs),
                drain_timeout: Duration::from_secs(drain_timeout_secs),
                ..ConnectionLimits::default()
            };
            vellum_server::witness::http::serve(witness, listen, &prefix, limits, &mut |url| {
                say!("listening on {url}");
            })?;
            Ok(exit::OK)
        }
        WitnessCommand::Evidence { state } => {
            for evidence in WitnessState::open(&state)?.evidence()? {
                say!(
                    "{}",
                    serde_json::json!({
                        "origin": evidence.origin,
                        "received": evidence.received,
                        "kind": evidence.kind,
                        "reason": evidence.reason,
                        "request": evidence.request,
                    })
                );
            }
            Ok(exit::OK)
        }
    }
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))
}
