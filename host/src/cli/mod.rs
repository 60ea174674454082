//! Command-line interface: argument parsing, logging set-up and exit codes.

mod inspect;
mod run;

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
}

/// Vellum: an audit sink whose redaction and policy rules are sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(
    name = "vellum",
    version,
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 chain or plugin cannot be loaded, \
                  4 malformed input line(s), 5 event(s) rejected.\n\
                  Logging: set RUST_LOG (e.g. RUST_LOG=debug); logs go to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Apply a plugin chain to JSON-lines events and print one JSON verdict per line.
    Run(run::RunArgs),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's world, imports, exports, size and digest.
    Inspect {
        /// The component (.wasm) to inspect.
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        Command::Run(args) => run::run(args),
    };
    ExitCode::from(code)
}

/// Prints an error with its causes to stderr.
pub fn report(error: &anyhow::Error) {
    eprintln!("vellum: error: {error:#}");
}
