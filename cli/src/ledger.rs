//! Ledger commands: `init`, `query`, `export`, `checkpoint`, `prove`, `check-proof`,
//! `verify` and `key`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use vellum::ledger::bundle::ProofBundle;
use vellum::ledger::checkpoint::verify_checkpoint;
use vellum::ledger::cosignature::CosignatureVerifier;
use vellum::ledger::query::Query;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::store::{Backend, Location, StoreError, StoreReader};
use vellum::ledger::timestamp::TsaCertificate;
use vellum::ledger::tlog_proof::{self, TlogProof};
use vellum::ledger::verify::{Anchor, verify_anchored};
use vellum::ledger::witness_policy::WitnessPolicy;
use vellum::ledger::{Ledger, LedgerOptions, read_vkey};
use vellum::sink::WitnessConfig;

use super::exit;

/// `--ledger PATH|URL` and its keys, shared by the ledger commands.
#[derive(Args)]
pub struct LedgerArg {
    /// The ledger: a SQLite file, or a `postgres://user@host:port/database` URL.
    #[arg(long)]
    pub ledger: String,
    /// The signing key file (default: `<ledger>.key` beside a SQLite file; a PostgreSQL
    /// ledger must name it to be written to).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// A shell command that prints the signing key (for a secret manager) instead of a
    /// key file; --verifier-key must then be given.
    #[arg(long, conflicts_with = "signing_key")]
    pub signing_key_command: Option<String>,
    /// The verifier key file (default: the signing key's path with `.pub` for `.key`).
    #[arg(long)]
    pub verifier_key: Option<PathBuf>,
    /// Serve reads from this read-only replica (`postgres://` URL) of the ledger's database.
    #[arg(long)]
    pub read_replica: Option<String>,
    /// The key store of a SQLite ledger: the data keys that seal entries' content
    /// (default `<ledger>.keys`; a PostgreSQL ledger keeps them in its `vellum_keys` schema).
    #[arg(long)]
    pub key_store: Option<PathBuf>,
}

impl LedgerArg {
    /// Where the ledger and its keys are.
    pub fn location(&self) -> Location {
        Location::parse(&self.ledger)
            .with_signing_key(self.signing_key.clone())
            .with_signing_key_command(self.signing_key_command.clone())
            .with_verifier_key(self.verifier_key.clone())
            .with_read_replica(self.read_replica.clone())
            .with_key_store(self.key_store.clone())
    }
}

/// Arguments of `vellum init`.
#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// The log's identity in checkpoints and the key name (no spaces or `+`); default
    /// `vellum/<file name>` (`vellum/<database>` for PostgreSQL).
    #[arg(long)]
    origin: Option<String>,
}

/// `vellum init`: creates the ledger and its key pair, prints the verifier key.
pub fn init(args: InitArgs) -> Result<u8> {
    let location = args.ledger.location();
    let origin = args.origin.unwrap_or_else(|| {
        let stem = match location.backend() {
            Backend::Sqlite(path) => path
                .file_stem()
                .map_or("ledger".into(), |s| s.to_string_lossy().into_owned()),
            Backend::Postgres(url) => database_name(url),
        };
        format!("vellum/{}", stem.replace([' ', '+'], "-"))
    });
    let vkey = Ledger::init(&location, &origin)?;
    eprintln!(
        "created {location} (signing key {}, mode 0600; verifier key {})",
        location.signing_key()?.display(),
        location.verifier_key()?.display()
    );
    say!("{vkey}");
    Ok(exit::OK)
}

/// Arguments of `vellum query`.
#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only events that occurred at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<Timestamp>,
    /// Only events that occurred before this RFC 3339 time.
    #[arg(long)]
    until: Option<Timestamp>,
    /// Only these action kinds (repeat or comma-separate).
    #[arg(long = "kind", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Only this correlation id.
    #[arg(long)]
    correlation_id: Option<String>,
    /// Only this chain id.
    #[arg(long)]
    chain_id: Option<String>,
    /// Only this actor.
    #[arg(long)]
    actor: Option<String>,
    /// Entries per page.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue after the cursor printed by the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

/// `vellum query`: matching entries as JSON lines; the next page's cursor on stderr.
pub fn query(args: QueryArgs) -> Result<u8> {
    let ledger = Ledger::open_read_only(args.ledger.location())?;
    let mut query = Query {
        tenant: args.tenant,
        since: args.since,
        until: args.until,
        kinds: args.kinds,
        correlation_id: args.correlation_id,
        chain_id: args.chain_id,
        actor: args.actor,
        after_seq: None,
        limit: args.limit,
        max_bytes: None,
    };
    if let Some(cursor) = &args.cursor {
        query = query.with_cursor(cursor).map_err(anyhow::Error::msg)?;
    }
    let page = ledger.query(&query)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for entry in &page.entries {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if let Some(cursor) = page.next_cursor {
        eprintln!("next page: --cursor {cursor}");
    }
    Ok(exit::OK)
}

/// Arguments of `vellum export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// First sequence number to export.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Export up to (not including) this sequence number; default: the end.
    #[arg(long)]
    to: Option<u64>,
    /// Instead, write the log as C2SP tlog-tiles into this directory, for any static
    /// host: `checkpoint` (the newest published one), `tile/…` and entry bundles. Run it
    /// again to bring the directory up to date.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    tiles: Option<PathBuf>,
    /// With --tiles: export the newest checkpoint whose cosignatures meet this witness
    /// policy.
    #[arg(long, requires = "tiles")]
    witness_policy: Option<PathBuf>,
}

/// Reads a witness policy file, if one is named.
fn load_policy(file: Option<&Path>) -> Result<Option<WitnessPolicy>> {
    file.map(|f| WitnessPolicy::load(f).map_err(anyhow::Error::msg))
        .transpose()
}

/// `vellum export`: every entry (with its leaf hash) as JSON lines, or the tiled log.
pub fn export(args: ExportArgs) -> Result<u8> {
    if let Some(dir) = &args.tiles {
        let policy = load_policy(args.witness_policy.as_deref())?;
        let ledger = Ledger::open_read_only(args.ledger.location())?.with_witness_policy(policy);
        let report = ledger.export_tiles(dir)?;
        eprintln!(
            "ok: the tiled log of checkpoint {} in {} ({} files written, {} full tiles kept)",
            report.size,
            dir.display(),
            report.written,
            report.kept
        );
        return Ok(exit::OK);
    }
    let store = args.ledger.location().open_reader()?;
    let to = args.to.unwrap_or(u64::MAX).min(store.size()?);
    let mut out = BufWriter::new(io::stdout().lock());
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(flatten)]
        entry: &'a vellum::ledger::entry::Entry,
        leaf_hash: String,
    }
    let mut start = args.from;
    while start < to {
        let end = (start + 4096).min(to);
        for (entry, leaf) in store.entries(start, end)? {
            serde_json::to_writer(
                &mut out,
                &Line {
                    entry: &entry,
                    leaf_hash: hex::encode(leaf.0),
                },
            )?;
            out.write_all(b"\n")?;
        }
        start = end;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// Arguments of `vellum checkpoint`.
#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Also write the signed note, with the witnesses' cosignatures, to this file, to keep
    /// outside the ledger (for `verify --trusted-checkpoint`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Ask the witness at this URL to cosign the checkpoint (repeatable; each with a
    /// --witness-key, in the same order).
    #[arg(long, requires = "witness_key")]
    witness: Vec<String>,
    /// The verifier key file of each --witness.
    #[arg(long, requires = "witness")]
    witness_key: Vec<PathBuf>,
    /// Ask the witnesses of this policy that name a URL, and fail (exit 6) unless the
    /// cosignatures meet its quorum.
    #[arg(long)]
    witness_policy: Option<PathBuf>,
}

/// `vellum checkpoint`: signs a checkpoint of the current tree now and prints it.
pub fn checkpoint(args: CheckpointArgs) -> Result<u8> {
    anyhow::ensure!(
        args.witness.len() == args.witness_key.len(),
        "give one --witness-key per --witness ({} URLs, {} keys)",
        args.witness.len(),
        args.witness_key.len()
    );
    let witnesses = args
        .witness
        .iter()
        .zip(&args.witness_key)
        .map(|(url, key)| {
            WitnessConfig {
                url: url.clone(),
                key: key.clone(),
            }
            .witness()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut witnesses = witnesses;
    let policy = load_policy(args.witness_policy.as_deref())?;
    if let Some(policy) = &policy {
        policy.add_asked(&mut witnesses)?;
    }
    let options = LedgerOptions {
        witnesses,
        witness_policy: policy.clone(),
        ..LedgerOptions::default()
    };
    let ledger = Ledger::open(args.ledger.location(), options)?;
    let (note, failed) = ledger.checkpoint_witnessed()?;
    let size = verify_checkpoint(&note, ledger.verifier_key())?.size;
    let lines = ledger.cosignatures(size)?;
    let cosigned = format!("{note}{}", lines.concat());
    let missed = policy
        .as_ref()
        .map(|p| (p.describe(), p.check(&note, &lines)))
        .filter(|(_, check)| !check.met);
    if let Some(out) = &args.out {
        std::fs::write(out, &cosigned)
            .with_context(|| format!("cannot write the checkpoint to {}", out.display()))?;
    }
    say_raw!("{cosigned}");
    for e in &failed {
        eprintln!("vellum: checkpoint {size} not cosigned: {e}");
    }
    if let Some((quorum, check)) = &missed {
        eprintln!(
            "vellum: checkpoint {size} misses the witness quorum {quorum}: no valid \
             cosignature by {}",
            check.missing.join(", ")
        );
        return Ok(exit::LEDGER);
    }
    match failed.is_empty() || policy.is_some() {
        true => Ok(exit::OK),
        false => Ok(exit::LEDGER),
    }
}

/// Arguments of `vellum prove`.
#[derive(Args)]
pub struct ProveArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Prove that this entry is included (default: in the latest checkpoint covering it).
    seq: Option<u64>,
    /// Prove against the checkpoint of this size.
    #[arg(long)]
    tree_size: Option<u64>,
    /// Instead, prove that the checkpoint of this size is a prefix of the one of
    /// `--tree-size`.
    #[arg(long, requires = "tree_size", conflicts_with = "seq")]
    consistency_from: Option<u64>,
    /// `json` (a Vellum proof bundle) or `tlog-proof` (the C2SP `.tlog-proof` text of an
    /// inclusion proof, with the checkpoint's cosignatures).
    #[arg(long, value_enum, default_value_t = ProofFormat::Json)]
    format: ProofFormat,
}

/// The forms `vellum prove` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProofFormat {
    /// A JSON proof bundle.
    Json,
    /// A C2SP tlog-proof.
    TlogProof,
}

/// `vellum prove`: prints a proof bundle (JSON).
pub fn prove(args: ProveArgs) -> Result<u8> {
    let ledger = Ledger::open_read_only(args.ledger.location())?;
    if args.format == ProofFormat::TlogProof {
        let seq = args
            .seq
            .context("--format tlog-proof proves an entry's inclusion: give its sequence number")?;
        say_raw!("{}", ledger.tlog_proof(seq, args.tree_size)?.format());
        return Ok(exit::OK);
    }
    let bundle = match (args.seq, args.consistency_from) {
        (Some(seq), None) => ledger.inclusion_bundle(seq, args.tree_size)?,
        (None, Some(old)) => {
            let new = args
                .tree_size
                .context("--consistency-from needs --tree-size")?;
            ledger.consistency_bundle(old, new)?
        }
        _ => {
            anyhow::bail!("give an entry's sequence number, or --consistency-from with --tree-size")
        }
    };
    say!("{}", serde_json::to_string_pretty(&bundle)?);
    Ok(exit::OK)
}

/// Arguments of `vellum check-proof`.
#[derive(Args)]
pub struct CheckProofArgs {
    /// The proof written by `vellum prove`: a JSON bundle or a `.tlog-proof`.
    proof: PathBuf,
    /// The verifier key (the contents of `<ledger>.pub`).
    #[arg(long, conflicts_with = "key_file")]
    key: Option<String>,
    /// A file holding the verifier key (kept apart from the ledger).
    #[arg(long, alias = "trusted-key")]
    key_file: Option<PathBuf>,
    /// A checkpoint saved earlier (a signed note file): the proof must start from it (a
    /// consistency proof's old checkpoint, an inclusion proof's checkpoint).
    #[arg(long)]
    trusted_checkpoint: Option<PathBuf>,
    /// Require the checkpoint's cosignatures to meet this witness policy's quorum.
    #[arg(long)]
    witness_policy: Option<PathBuf>,
}

/// `vellum check-proof` of a `.tlog-proof`.
fn check_tlog_proof(text: &str, vkey: &str, args: &CheckProofArgs) -> Result<u8> {
    anyhow::ensure!(
        args.trusted_checkpoint.is_none(),
        "--trusted-checkpoint applies to JSON bundles; a .tlog-proof carries its own checkpoint"
    );
    let policy = load_policy(args.witness_policy.as_deref())?;
    let checked = TlogProof::parse(text)
        .and_then(|p| p.check(vkey, policy.as_ref()).map(|cp| (p.index, cp.size)));
    match checked {
        Ok((index, size)) => {
            let quorum = match &policy {
                Some(p) => format!(", cosigned by the quorum {}", p.describe()),
                None => String::new(),
            };
            say!("ok: entry {index} is in the signed checkpoint of {size} entries{quorum}");
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("vellum: proof does NOT verify: {e}");
            Ok(exit::TAMPERED)
        }
    }
}

/// `vellum check-proof`: verifies a bundle with only the key — no database.
pub fn check_proof(args: CheckProofArgs) -> Result<u8> {
    let vkey = match (&args.key, &args.key_file) {
        (Some(key), _) => key.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => anyhow::bail!("give the verifier key with --key or --key-file"),
    };
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("reading {}", args.proof.display()))?;
    if text.starts_with(tlog_proof::HEADER) {
        return check_tlog_proof(&text, vkey.trim(), &args);
    }
    anyhow::ensure!(
        args.witness_policy.is_none(),
        "--witness-policy applies to a .tlog-proof, which carries the cosignatures"
    );
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", args.proof.display()))?;
    let result = match &args.trusted_checkpoint {
        None => bundle.check(&vkey),
        Some(file) => {
            let note = std::fs::read_to_string(file).with_context(|| {
                format!("cannot read the trusted checkpoint {}", file.display())
            })?;
            let trusted = verify_checkpoint(&note, &vkey).with_context(|| {
                format!("the trusted checkpoint {} does not verify", file.display())
            })?;
            bundle.check_anchored(&vkey, &trusted)
        }
    };
    match result {
        Ok(message) => {
            say!("ok: {message}");
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("vellum: proof does NOT verify: {e}");
            Ok(exit::TAMPERED)
        }
    }
}

/// Arguments of `vellum verify`.
#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Check only entries from this sequence number (by inclusion proofs).
    #[arg(long)]
    from: Option<u64>,
    /// Check only entries before this sequence number (by inclusion proofs).
    #[arg(long)]
    to: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Check the checkpoints with this verifier key file, kept apart from the ledger,
    /// instead of the key beside it; a checkpoint it did not sign is `wrong-key`.
    #[arg(long)]
    trusted_key: Option<PathBuf>,
    /// A checkpoint saved earlier (a signed note file, e.g. from `vellum checkpoint
    /// --out`): the ledger must extend it, or it is `rolled-back` (smaller) or `forked`
    /// (other entries). Needs --trusted-key.
    #[arg(long, requires = "trusted_key")]
    trusted_checkpoint: Option<PathBuf>,
    /// Require a valid cosignature by this witness (its verifier key file; repeatable) on
    /// some checkpoint; none is `unwitnessed`.
    #[arg(long)]
    witness_key: Vec<PathBuf>,
    /// Require a checkpoint whose stored cosignatures meet this witness policy's quorum
    /// (see docs/ledger-format.md); none is `unwitnessed`, naming the missing witnesses.
    #[arg(long)]
    witness_policy: Option<PathBuf>,
    /// Require RFC 3161 timestamps of the checkpoints that this timestamp authority's
    /// certificate (PEM) verifies; none is `untimestamped`, a bad one `bad-checkpoint`.
    #[arg(long)]
    tsa_cert: Option<PathBuf>,
}

/// The verification anchor of `verify`'s arguments: the trusted key and checkpoint, or the
/// ledger's own verifier key.
fn anchor(args: &VerifyArgs, location: &Location) -> Result<Anchor> {
    let witnesses = args
        .witness_key
        .iter()
        .map(|file| {
            let vkey = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the witness key {}", file.display()))?;
            CosignatureVerifier::new(&vkey)
                .with_context(|| format!("the witness key {}", file.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let policy = load_policy(args.witness_policy.as_deref())?;
    let tsa = args
        .tsa_cert
        .as_deref()
        .map(TsaCertificate::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let Some(key_file) = &args.trusted_key else {
        return Ok(Anchor {
            key: read_vkey(location)?,
            trusted_key: false,
            checkpoint: None,
            witnesses,
            policy,
            tsa,
        });
    };
    let key = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read the trusted key {}", key_file.display()))?
        .trim()
        .to_string();
    let checkpoint = match &args.trusted_checkpoint {
        None => None,
        Some(file) => {
            let note = std::fs::read_to_string(file).with_context(|| {
                format!("cannot read the trusted checkpoint {}", file.display())
            })?;
            Some(verify_checkpoint(&note, &key).with_context(|| {
                format!(
                    "the trusted checkpoint {} does not verify with the trusted key {}",
                    file.display(),
                    key_file.display()
                )
            })?)
        }
    };
    Ok(Anchor {
        key,
        trusted_key: true,
        checkpoint,
        witnesses,
        policy,
        tsa,
    })
}

/// `vellum verify`: exit 0 when intact, 7 with the first bad sequence number otherwise.
pub fn verify_ledger(args: VerifyArgs) -> Result<u8> {
    let location = args.ledger.location();
    let anchor = anchor(&args, &location)?;
    let opened = match location.file() {
        Some(path) => SqliteStore::open(path).and_then(|s| {
            s.integrity_check()?;
            let keys = location.keys_for_reading()?;
            let unsealer = vellum::ledger::store::unseal::Unsealer::tolerant(keys);
            Ok(Box::new(s.with_unsealer(unsealer)) as Box<dyn StoreReader>)
        }),
        None => location.open_reader_tolerant(),
    };
    let store = match opened {
        Ok(store) => store,
        Err(StoreError::Io(e)) => return Err(anyhow::anyhow!("{location}: {e}")),
        Err(e) => {
            eprintln!("vellum: {location}: corrupted: {e}");
            return Ok(exit::TAMPERED);
        }
    };
    let range = match (args.from, args.to) {
        (None, None) => None,
        (from, to) => Some((from.unwrap_or(0), to.unwrap_or(u64::MAX))),
    };
    let bar = crate::progress::entries(store.size()?);
    let report = verify_anchored(store.as_ref(), &anchor, range, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    }
    match report.first() {
        None => {
            let against = match (&args.trusted_key, &anchor.checkpoint) {
                (None, _) => String::new(),
                (Some(key), None) => format!(" with the trusted key {}", key.display()),
                (Some(key), Some(cp)) => format!(
                    " with the trusted key {}, extending the trusted checkpoint of size {}",
                    key.display(),
                    cp.size
                ),
            };
            eprintln!(
                "ok: {} entries and {} checkpoint(s) verified in {location}{against}",
                report.entries_checked, report.checkpoints_checked,
            );
            if report.entries_erased > 0 {
                eprintln!(
                    "ok: {} of them erased, each covered by a signed erasure record; their \
                     leaves still verify",
                    report.entries_erased
                );
            }
            for (witness, size) in &report.witnessed {
                match witness.strip_prefix("quorum ") {
                    Some(quorum) => eprintln!(
                        "ok: the witness quorum {quorum} cosigned the first {size} entries"
                    ),
                    None => eprintln!("ok: witness {witness} cosigned the first {size} entries"),
                }
            }
            if let Some((size, time)) = report.timestamped.last() {
                eprintln!(
                    "ok: {} RFC 3161 timestamp(s) verified; the first {size} entries existed by \
                     {time}",
                    report.timestamped.len()
                );
            }
            Ok(exit::OK)
        }
        Some(first) => {
            let at = first.seq.map_or("unknown".to_string(), |s| s.to_string());
            eprintln!(
                "vellum: {location} FAILED verification: first bad sequence number {at}: {} ({})",
                serde_json::to_value(first.class)?.as_str().unwrap_or("?"),
                first.detail
            );
            Ok(exit::TAMPERED)
        }
    }
}

/// `vellum key`: prints the verifier key.
pub fn key(args: LedgerArg) -> Result<u8> {
    say!("{}", read_vkey(args.location())?);
    Ok(exit::OK)
}

/// The database name of a PostgreSQL URL (`postgres://host/audit?x=y` → `audit`).
fn database_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    let name = path.split(['?', '#']).next().unwrap_or_default();
    match name.is_empty() {
        true => "ledger".to_string(),
        false => name.to_string(),
    }
}
