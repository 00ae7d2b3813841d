//! `tusk download ID|URL...`: files into local files, resumable and
//! verified ([`tusk_client::download`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::json;
use tusk_client::download::{DownloadProgress, download_to};
use tusk_client::retry::retrying;
use tusk_client::{Client, ClientError, FileInfo, hash_file};

use crate::progress::{Bars, size};
use crate::remote::{ServerArgs, explain, explain_download, file_id, origin, reachable};

/// Download files by id or download URL.
///
/// Each file is saved under its own name (the last part of it), checked
/// against its hash, and only then put in place. An interrupted download
/// leaves `NAME.part`, which the same command continues.
#[derive(clap::Args)]
pub struct DownloadArgs {
    /// Files: ids (from `tusk ls`) or download URLs (`…/files/ID/NAME`).
    #[arg(required = true, value_name = "ID|URL", value_parser = parse_file)]
    files: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Where to save: a file name (for one file) or an existing folder.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// Overwrite a local file that differs.
    #[arg(long)]
    force: bool,
    /// Print one JSON object per finished file instead of a line of text.
    #[arg(long)]
    json: bool,
}

fn parse_file(s: &str) -> Result<String, String> {
    if s.starts_with("https://") {
        return Err("https:// is not supported yet: use the server's http:// address".into());
    }
    file_id(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| "not a file id (32 hex digits) or a download URL (…/files/ID/NAME)".into())
}

pub async fn run(args: DownloadArgs) -> ExitCode {
    let into_dir = match &args.output {
        Some(o) if o.is_dir() => Some(o.clone()),
        Some(o) if args.files.len() > 1 => {
            eprintln!(
                "error: -o {} must be an existing folder when downloading several files\n\n\
                 For more information, try '--help'.",
                o.display()
            );
            return ExitCode::from(2);
        }
        Some(_) => None,
        None => Some(PathBuf::from(".")),
    };
    let bars = Bars::new();
    let mut failed = 0;
    for arg in &args.files {
        let server = origin(arg).unwrap_or_else(|| args.server.server.clone());
        let client = args.server.client_of(&server);
        let id = file_id(arg).expect("checked by the parser");
        if let Err(why) = reachable(&client).await {
            failed += 1;
            bars.note(&format!("tusk download: {arg}: {why}"));
            continue;
        }
        let dest = |file: &FileInfo| match &into_dir {
            Some(dir) => dir.join(file.name.rsplit('/').next().unwrap_or(&file.name)),
            None => args.output.clone().expect("a file name"),
        };
        match one(&client, &id, dest, &args, &bars).await {
            Ok(line) => bars.println(&line),
            Err(why) => {
                failed += 1;
                bars.note(&format!("tusk download: {arg}: {why}"));
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "tusk download: {failed} of {} files failed; run the same command again to continue",
            args.files.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn one(
    client: &Client,
    id: &str,
    dest: impl Fn(&FileInfo) -> PathBuf,
    args: &DownloadArgs,
    bars: &Bars,
) -> Result<String, String> {
    let server = client.base().to_owned();
    let file = retrying(|| client.file(id), |e, w| bars.retrying(id, e, w))
        .await
        .map_err(|e| explain(&e, &server))?;
    let dest = dest(&file);
    if dest.exists() && !args.force {
        if same_content(&dest, &file).await {
            return Ok(line(args.json, &file, &dest, "exists", 0, 0));
        }
        return Err(format!(
            "{} exists and differs; remove it, pass --force to overwrite it, or choose another \
             place with -o",
            dest.display()
        ));
    }
    let bar = bars.total("download", file.size);
    let watch = Watch {
        bar: &bar,
        bars,
        id,
    };
    let result = download_to(client, &file, &dest, &watch).await;
    bar.finish_and_clear();
    let report = result.map_err(|e| explain_download(&e, &server))?;
    Ok(line(
        args.json,
        &file,
        &dest,
        "downloaded",
        report.resumed_from,
        report.fetched,
    ))
}

/// Whether the local file at `path` has `file`'s content.
async fn same_content(path: &Path, file: &FileInfo) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() != file.size {
        return false;
    }
    let owned = path.to_owned();
    match tokio::task::spawn_blocking(move || hash_file(&owned, 0)).await {
        Ok(Ok(h)) => h.hash.to_string() == file.hash,
        _ => false,
    }
}

fn line(
    json: bool,
    file: &FileInfo,
    dest: &Path,
    status: &str,
    resumed: u64,
    fetched: u64,
) -> String {
    if json {
        json!({
            "id": file.id,
            "name": file.name,
            "size": file.size,
            "hash": file.hash,
            "path": dest.to_string_lossy(),
            "status": status,
            "resumed_from": resumed,
            "bytes_fetched": fetched,
        })
        .to_string()
    } else {
        format!("{status:<10}  {:>10}  {}", size(file.size), dest.display())
    }
}

struct Watch<'a> {
    bar: &'a ProgressBar,
    bars: &'a Bars,
    id: &'a str,
}

impl DownloadProgress for Watch<'_> {
    fn already(&self, bytes: u64) {
        self.bar.inc(bytes);
        self.bar.reset_eta();
    }
    fn received(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn retrying(&self, error: &ClientError, wait: Duration) {
        self.bars.retrying(self.id, error, wait);
    }
}
