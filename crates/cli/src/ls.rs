//! `tusk ls [SEARCH]`: the files on the server, newest first.

use std::process::ExitCode;

use tusk_client::retry::retrying;

use crate::progress::size;
use crate::remote::{ServerArgs, brief, explain, reachable};

/// List the files on the server, newest first: id, size, date, name.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Only names containing this text (any case).
    #[arg(value_name = "SEARCH")]
    search: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Print one JSON object per file.
    #[arg(long)]
    json: bool,
    /// Stop after this many files.
    #[arg(long, short = 'n', value_name = "N")]
    limit: Option<u64>,
}

/// Files asked for per request.
const PAGE: u32 = 1000;

pub async fn run(args: LsArgs) -> ExitCode {
    let client = args.server.client();
    if let Err(why) = reachable(&client).await {
        eprintln!("tusk ls: {why}");
        return ExitCode::FAILURE;
    }
    let mut cursor: Option<String> = None;
    let mut shown = 0u64;
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    loop {
        let want = PAGE.min((limit - shown).min(PAGE as u64) as u32);
        if want == 0 {
            break;
        }
        let page = retrying(
            || client.list_files(cursor.as_deref(), want, args.search.as_deref()),
            |e, w| {
                eprintln!(
                    "tusk ls: {}; trying again in {:.1} s",
                    brief(e),
                    w.as_secs_f64()
                )
            },
        )
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                eprintln!("tusk ls: {}", explain(&e, client.base()));
                return ExitCode::FAILURE;
            }
        };
        for f in &page.files {
            let line = if args.json {
                serde_json::json!({
                    "id": f.id, "name": f.name, "size": f.size, "mime": f.mime,
                    "hash": f.hash, "created_at": f.created_at,
                    "url": client.absolute(&f.url),
                })
                .to_string()
            } else {
                let date = f
                    .created_at
                    .get(..19)
                    .unwrap_or(&f.created_at)
                    .replace('T', " ");
                format!("{}  {:>10}  {date}  {}", f.id, size(f.size), f.name)
            };
            if std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes()).is_err() {
                // The reader went away (`tusk ls | head`): nothing left to do.
                return ExitCode::SUCCESS;
            }
        }
        shown += page.files.len() as u64;
        match page.next_cursor {
            Some(next) if !page.files.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    ExitCode::SUCCESS
}
