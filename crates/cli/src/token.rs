//! `tusk token create|list|revoke`: the bearer tokens of a server.
//!
//! These work on the server's catalog directly (the same `--data` or
//! `--catalog` as `tusk serve`), so they need no token themselves: whoever
//! may read the server's data folder or database is its administrator.
//! They run beside a running server; it sees a new or revoked token on
//! its next request.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use tusk_server::ServeConfig;
use tusk_server::config::parse_size;

/// Manage the bearer tokens of a server.
#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token for an owner (its account is created with it) and
    /// print it: it is shown this once and stored only as a hash.
    Create {
        /// The owner the token acts for: 1 to 64 letters, digits, `.`, `_`,
        /// `-` or `@`. Files of a server used without tokens belong to
        /// `local`.
        #[arg(long)]
        name: String,
        /// The most the owner's files and unfinished uploads may add up
        /// to, e.g. `50GiB` (kept for the owner's later tokens).
        #[arg(long, value_parser = parse_size)]
        quota: Option<u64>,
        /// The owner may read `/metrics`.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        server: ServeConfig,
    },
    /// List every token: id, owner, quota, admin, created, revoked.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServeConfig,
    },
    /// Revoke a token by its id, or every token of an owner by its name.
    Revoke {
        #[arg(value_name = "ID|NAME")]
        which: String,
        #[command(flatten)]
        server: ServeConfig,
    },
}

pub async fn run(args: TokenArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tusk token: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let server = match &args.command {
        TokenCommand::Create { server, .. }
        | TokenCommand::List { server, .. }
        | TokenCommand::Revoke { server, .. } => server,
    };
    let service = tusk_server::open_unheld(server).await?;
    match args.command {
        TokenCommand::Create {
            name, quota, admin, ..
        } => {
            let issued = service.create_token(&name, quota, admin).await?;
            eprintln!(
                "token {} for {} (shown once; send it as Authorization: Bearer …):",
                issued.id, issued.owner.0
            );
            println!("{}", issued.secret);
        }
        TokenCommand::List { json, .. } => {
            for t in service.list_tokens().await? {
                if json {
                    println!(
                        "{}",
                        json!({
                            "id": t.id.as_str(),
                            "owner": t.account.owner.0,
                            "quota": t.account.quota,
                            "admin": t.account.admin,
                            "created_at": t.created_at,
                            "revoked_at": t.revoked_at,
                        })
                    );
                } else {
                    let quota = t
                        .account
                        .quota
                        .map(|q| indicatif::HumanBytes(q).to_string())
                        .unwrap_or_else(|| "-".into());
                    let revoked = t
                        .revoked_at
                        .map(|r| format!("revoked {}", r.to_rfc3339()))
                        .unwrap_or_default();
                    println!(
                        "{}  {:<20} quota {:<10} {:<5}  {}  {revoked}",
                        t.id,
                        t.account.owner.0,
                        quota,
                        if t.account.admin { "admin" } else { "" },
                        t.created_at.to_rfc3339(),
                    );
                }
            }
        }
        TokenCommand::Revoke { which, .. } => {
            let n = service.revoke_tokens(&which).await?;
            if n == 0 {
                eprintln!("tusk token: no token to revoke matches {which:?}");
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("revoked {n} token{}", if n == 1 { "" } else { "s" });
        }
    }
    Ok(ExitCode::SUCCESS)
}
