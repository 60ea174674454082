//! `vellum serve` (the sink over HTTP; see the `vellum-server` crate) and `vellum token new`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::exit;

/// Arguments of `vellum serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The sink file: `[sink]`, `[ledger]`, `[chain]` and `[server]` tables.
    #[arg(long)]
    config: PathBuf,
}

/// `vellum serve`: serves until SIGTERM or SIGINT, then drains and signs a checkpoint.
pub fn serve(args: ServeArgs) -> Result<u8> {
    let load = crate::builtins::load_options(false);
    let checkpoint = vellum_server::run(&args.config, &load, &mut |address| {
        say!("listening on {address}");
    })?;
    eprintln!("stopped; final checkpoint:\n{checkpoint}");
    Ok(exit::OK)
}

/// `vellum token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a bearer token for one tenant; prints the token (give it to the producer)
    /// and the `[[server.token]]` entry that stores only its hash.
    New {
        /// The only tenant the token may write and read.
        #[arg(long)]
        tenant: String,
        /// An operator's token: it may also run what reads the whole ledger across tenants
        /// (`POST /v1/verify`). Producers' tokens should not have it.
        #[arg(long)]
        admin: bool,
    },
}

/// Runs a token command.
pub fn token(command: TokenCommand) -> Result<u8> {
    match command {
        TokenCommand::New { tenant, admin } => {
            let (token, digest) = vellum_server::auth::new_token().map_err(anyhow::Error::msg)?;
            eprintln!(
                "# give the producer the token (printed first); put the entry in the sink file"
            );
            let admin = if admin { "\nadmin = true" } else { "" };
            say!("{token}\n\n[[server.token]]\ntenant = {tenant:?}\nsha256 = \"{digest}\"{admin}");
            Ok(exit::OK)
        }
    }
}
