//! `tusk sweep`: one round of the sweeper, now, on a server's store and
//! catalog (the same settings as `tusk serve`), printing what it did.
//!
//! Every `tusk serve` sweeps at start and every 5 minutes by itself; this
//! runs the same round on demand: after a crash, before a backup, or with
//! a shorter `--orphan-age` while the server is stopped. On a data folder
//! (local disk, SQLite) it holds the folder like `tusk serve` does, so it
//! refuses to run beside a server on it: the upload locks of an SQLite
//! catalog live in that server's memory.

use std::process::ExitCode;

use clap::Args;
use tusk_server::ServeConfig;

/// Sweep once: end expired uploads, discard staging and blobs no record
/// names.
#[derive(Args)]
pub struct SweepArgs {
    /// One JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServeConfig,
}

pub async fn run(args: SweepArgs) -> ExitCode {
    let state = match tusk_server::open(&args.server).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("tusk sweep: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let swept = tusk_server::sweep_once(&state.service).await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "expired_uploads": swept.expired,
                "orphaned_stagings": swept.stagings,
                "orphaned_blobs": swept.blobs,
                "failed": swept.failed,
            })
        );
    } else {
        println!(
            "tusk sweep: {} expired uploads ended, {} orphaned stagings discarded, {} orphaned \
             blobs deleted",
            swept.expired, swept.stagings, swept.blobs
        );
    }
    if swept.failed > 0 {
        eprintln!("tusk sweep: part of the sweep failed (see the log above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
