//! `tusk`: the server and the client of very large uploads.
//!
//! - `tusk serve`: run the server on a data folder (see `serve.rs`); its
//!   settings may also come from a TOML file (`config_file.rs`)
//! - `tusk upload`, `download`, `ls`, `rm`: the client (`upload.rs`,
//!   `download.rs`, `ls.rs`, `rm.rs`; `walk.rs` finds the files, `cache.rs`
//!   remembers hashes and uploads, `progress.rs` draws the bars,
//!   `remote.rs` holds the server address and the wording of errors)
//! - `tusk token create|list|revoke`: a server's bearer tokens (`token.rs`)
//! - `tusk sweep`: one round of the server's sweeper, on demand (`sweep.rs`)
//! - `tusk hash`: the content hash of files, on every core (see `hash.rs`)
//!
//! Exit codes: 0 all done, 1 something failed (each named on stderr),
//! 2 bad usage (a bad config file included), 130 interrupted.

mod cache;
mod config_file;
mod download;
mod hash;
mod ls;
mod progress;
mod remote;
mod rm;
mod serve;
mod sweep;
mod token;
mod upload;
mod walk;

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serve::LogFormat;

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
    Serve(serve::ServeArgs),
    /// Upload files and folders; re-run to continue an interrupted upload.
    Upload(upload::UploadArgs),
    /// Download files; re-run to continue an interrupted download.
    Download(download::DownloadArgs),
    /// List the files on the server.
    Ls(ls::LsArgs),
    /// Delete files on the server.
    Rm(rm::RmArgs),
    /// Print the content hash (sha256-4m) of files.
    Hash(hash::HashArgs),
    /// Create, list and revoke the bearer tokens of a server.
    Token(token::TokenArgs),
    /// End expired uploads and discard what no record names, once, now.
    Sweep(sweep::SweepArgs),
}

fn main() -> ExitCode {
    let cli = match config_file::parse::<Cli>(std::env::args_os()) {
        Ok(cli) => cli,
        Err(config_file::Failure::Usage(e)) => e.exit(),
        Err(config_file::Failure::File(e)) => {
            eprintln!("tusk: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Serve(args) => init_logs("info", args.log_format),
        // What it removed is worth a line each.
        Command::Sweep(_) => init_logs("info", LogFormat::Text),
        // The client's output is its result lines; its logs are warnings.
        _ => init_logs("warn", LogFormat::Text),
    }
    if let Command::Hash(args) = &cli.command {
        return hash::run(args);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tusk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => match serve::serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tusk: {e:#}");
                    ExitCode::FAILURE
                }
            },
            Command::Upload(args) => interruptible(upload::run(args)).await,
            Command::Download(args) => interruptible(download::run(args)).await,
            Command::Ls(args) => interruptible(ls::run(args)).await,
            Command::Rm(args) => interruptible(rm::run(args)).await,
            Command::Token(args) => token::run(args).await,
            Command::Sweep(args) => sweep::run(args).await,
            Command::Hash(_) => unreachable!("handled above"),
        }
    });
    // After Ctrl-C, a file may still be hashing on the blocking pool: do
    // not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// Sends logs to stderr, at `default_level` unless `RUST_LOG` says
/// otherwise.
fn init_logs(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Runs a client command until it ends or Ctrl-C; what the server
/// acknowledged before stays, so the same command continues from there.
async fn interruptible(work: impl Future<Output = ExitCode>) -> ExitCode {
    tokio::select! {
        code = work => code,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ntusk: interrupted; run the same command again to continue where it stopped");
            ExitCode::from(130)
        }
    }
}
