//! `tusk`: the server and, in time, the client of very large uploads.
//!
//! - `tusk serve`: run the server on a data folder (see `serve.rs`)
//! - `tusk hash`: the content hash of files, on every core (see `hash.rs`)

mod hash;
mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tusk",
    version,
    about = "Resumable, deduplicated, verified uploads of very large files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the upload server.
    Serve(tusk_server::ServeConfig),
    /// Print the content hash (sha256-4m) of files.
    Hash(hash::HashArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let serve = match cli.command {
        Command::Hash(args) => return hash::run(&args),
        Command::Serve(config) => config,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tusk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve::serve(serve));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tusk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
