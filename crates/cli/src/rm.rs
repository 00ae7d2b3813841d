//! `tusk rm ID|URL...`: delete files.

use std::process::ExitCode;

use tusk_client::retry::retrying;

use crate::remote::{ServerArgs, brief, explain, file_id, reachable};

/// Delete files on the server (their content goes once no file uses it).
#[derive(clap::Args)]
pub struct RmArgs {
    /// Files: ids (from `tusk ls`) or download URLs.
    #[arg(required = true, value_name = "ID|URL", value_parser = parse_file)]
    files: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
}

fn parse_file(s: &str) -> Result<String, String> {
    file_id(s).ok_or_else(|| "not a file id (32 hex digits) or a download URL".into())
}

pub async fn run(args: RmArgs) -> ExitCode {
    let client = args.server.client();
    if let Err(why) = reachable(&client).await {
        eprintln!("tusk rm: {why}");
        return ExitCode::FAILURE;
    }
    let mut failed = 0;
    for id in &args.files {
        let deleted = retrying(
            || client.delete_file(id),
            |e, w| {
                eprintln!(
                    "tusk rm: {id}: {}; trying again in {:.1} s",
                    brief(e),
                    w.as_secs_f64()
                )
            },
        )
        .await;
        match deleted {
            Ok(()) => println!("deleted  {id}"),
            Err(e) => {
                failed += 1;
                eprintln!("tusk rm: {id}: {}", explain(&e, client.base()));
            }
        }
    }
    if failed > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
