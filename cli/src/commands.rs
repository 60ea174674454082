//! The subcommands, their exit codes, and the shared output helpers.

use crate::plugin_kit::{build, scaffold};
use crate::{builtins, demo, erase, inspect, ledger, monitor, run, serve, test, witness};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    /// Everything was processed and nothing was rejected.
    pub const OK: u8 = 0;
    /// An I/O or internal error stopped the run.
    pub const ERROR: u8 = 1;
    // 2 is clap's code for bad command-line usage.
    /// The chain file or a plugin could not be loaded.
    pub const CONFIG: u8 = 3;
    /// One or more input lines were malformed.
    pub const MALFORMED_INPUT: u8 = 4;
    /// One or more events were rejected (by a plugin's verdict or failure).
    pub const REJECTED: u8 = 5;
    /// The ledger could not be opened or refused to record (I/O error, full disk).
    pub const LEDGER: u8 = 6;
    /// Verification failed: the ledger or a proof does not check out.
    pub const TAMPERED: u8 = 7;
    /// `vellum test`: one or more cases failed.
    pub const TEST_FAILED: u8 = 8;
}

/// Vellum: an audit sink whose redaction and policy rules are sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(
    name = "vellum",
    version,
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 chain or plugin cannot be loaded, \
                  4 malformed input line(s), 5 event(s) rejected, 6 ledger unavailable or \
                  full, 7 verification failed, 8 test cases failed.\n\
                  Logging: set RUST_LOG (e.g. RUST_LOG=debug); logs go to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job in one command: sample agent events through the shipped redact and
    /// policy plugins into a fresh ledger, then query, verify and prove.
    Demo(demo::DemoArgs),
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Apply a plugin chain to JSON-lines events and print one JSON verdict per line (a dry
    /// run); with --ledger or --sink, emit them through the sink and print receipts.
    Run(run::RunArgs),
    /// Record JSON-lines events through the sink (--ledger, with --chain if given, or
    /// --sink FILE); prints each line's receipt or error.
    Ingest(run::RunArgs),
    /// Create a ledger and its signing key; prints the verifier key.
    Init(ledger::InitArgs),
    /// Query a ledger; prints matching entries as JSON lines.
    Query(ledger::QueryArgs),
    /// Export a ledger's entries as JSON lines.
    Export(ledger::ExportArgs),
    /// Sign a checkpoint of the ledger's current tree now.
    Checkpoint(ledger::CheckpointArgs),
    /// Print an inclusion or consistency proof bundle.
    Prove(ledger::ProveArgs),
    /// Verify a proof bundle with only the verifier key (no database).
    CheckProof(ledger::CheckProofArgs),
    /// Recompute every leaf and the tree, check every checkpoint; report the first bad entry.
    Verify(ledger::VerifyArgs),
    /// Print the ledger's verifier (public) key.
    Key(ledger::LedgerArg),
    /// Forget entries' content (a data subject's, a tenant's, or one entry's) and record
    /// the erasure as a signed entry; proofs made before still verify.
    Erase(erase::EraseArgs),
    /// Legal holds: what neither retention nor `erase` may touch.
    Hold {
        #[command(subcommand)]
        command: erase::HoldCommand,
    },
    /// Retention: erase the content of entries older than the `[retention]` rules allow.
    Retention {
        #[command(subcommand)]
        command: erase::RetentionCommand,
    },
    /// Run a plugin against a cases file of events and expected verdicts.
    Test(test::TestArgs),
    /// Serve the sink over HTTP: the native API with receipts, OTLP logs and traces.
    Serve(serve::ServeArgs),
    /// Manage the bearer tokens of `vellum serve`.
    Token {
        #[command(subcommand)]
        command: serve::TokenCommand,
    },
    /// Follow a log's published checkpoints through its tiles; alert on a fork, a
    /// rollback, a key change, an unwitnessed checkpoint or a stall.
    Monitor(monitor::MonitorArgs),
    /// Run a witness that cosigns other ledgers' checkpoints (C2SP tlog-witness).
    Witness {
        #[command(subcommand)]
        command: witness::WitnessCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's world, imports, exports, size and digest.
    Inspect {
        /// The component (.wasm) to inspect, or `builtin:NAME`.
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the plugins built into this binary (use them as `builtin:NAME`).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a plugin project (Rust, Python or JavaScript) that builds outside this
    /// repository: manifest, WIT, an example, a cases file, a chain file, a README.
    New(scaffold::NewArgs),
    /// Build a plugin project into NAME.wasm, a component of the plugin world, and check it.
    Build(build::BuildArgs),
    /// Write a built-in plugin's component to a file (for other hosts, or to inspect it).
    Export {
        /// The plugin, `builtin:NAME`.
        name: PathBuf,
        /// Where to write the component.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// Parses arguments, runs the command and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let code = match cli.command {
        Command::Plugin {
            command: PluginCommand::Inspect { component, json },
        } => inspect::inspect(&component, json),
        Command::Plugin {
            command: PluginCommand::List { json },
        } => outcome(builtins::list(json)),
        Command::Plugin {
            command: PluginCommand::Export { name, output },
        } => outcome(builtins::export(&name, &output)),
        Command::Plugin {
            command: PluginCommand::New(args),
        } => outcome(scaffold::new(args)),
        Command::Plugin {
            command: PluginCommand::Build(args),
        } => outcome(build::build(args)),
        Command::Demo(args) => outcome(demo::demo(args)),
        Command::Run(args) => run::run(args, true),
        Command::Ingest(args) => {
            if !args.records() {
                report(&anyhow::anyhow!(
                    "`vellum ingest` needs --ledger (or --sink)"
                ));
                exit::CONFIG
            } else {
                run::run(args, false)
            }
        }
        Command::Init(args) => outcome(ledger::init(args)),
        Command::Query(args) => outcome(ledger::query(args)),
        Command::Export(args) => outcome(ledger::export(args)),
        Command::Checkpoint(args) => outcome(ledger::checkpoint(args)),
        Command::Prove(args) => outcome(ledger::prove(args)),
        Command::CheckProof(args) => outcome(ledger::check_proof(args)),
        Command::Verify(args) => outcome(ledger::verify_ledger(args)),
        Command::Key(args) => outcome(ledger::key(args)),
        Command::Erase(args) => outcome(erase::erase(args)),
        Command::Hold { command } => outcome(erase::hold(command)),
        Command::Retention { command } => outcome(erase::retention(command)),
        Command::Test(args) => test::test(args),
        Command::Serve(args) => outcome(serve::serve(args)),
        Command::Token { command } => outcome(serve::token(command)),
        Command::Monitor(args) => outcome(monitor::monitor(args)),
        Command::Witness { command } => outcome(witness::witness(command)),
    };
    ExitCode::from(code)
}

/// Writes to stdout for [`say!`]; see there.
pub fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(exit::OK));
        }
        eprintln!("vellum: error: cannot write to stdout: {e}");
        std::process::exit(i32::from(exit::ERROR));
    }
}

/// Maps a command's result to its exit code, reporting errors.
fn outcome(result: anyhow::Result<u8>) -> u8 {
    result.unwrap_or_else(|e| {
        report(&e);
        if e.downcast_ref::<vellum::LedgerError>().is_some()
            || matches!(
                e.downcast_ref::<vellum::sink::OpenError>(),
                Some(vellum::sink::OpenError::Ledger(_))
            )
        {
            exit::LEDGER
        } else {
            exit::ERROR
        }
    })
}

/// Prints an error with its causes to stderr.
pub fn report(error: &anyhow::Error) {
    eprintln!("vellum: error: {error:#}");
}
