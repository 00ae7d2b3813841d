//! `tusk hash FILE...`: the `sha256-4m` content hash of files, as the
//! server computes it, on every core; `--md5` and `--sha256` add those
//! whole-file digests (read in one more pass, beside the block hashing).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tusk_client::hash::{WholeDigests, hash_file, whole_digests};

/// Print the content hash of files.
///
/// Each line is `sha256-4m:<hex>`, then `md5:<hex>` and `sha256:<hex>` when
/// asked for, then the path, separated by two spaces.
#[derive(clap::Args)]
pub struct HashArgs {
    /// Files to hash.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Also print the whole-file MD5.
    #[arg(long)]
    md5: bool,
    /// Also print the whole-file SHA-256.
    #[arg(long)]
    sha256: bool,
    /// Threads for the block hashes (default: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

pub fn run(args: &HashArgs) -> ExitCode {
    let mut failed = 0;
    for path in &args.files {
        match line(args, path) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("tusk hash: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "tusk hash: {failed} of {} files could not be hashed",
            args.files.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn line(args: &HashArgs, path: &Path) -> anyhow::Result<String> {
    if path.is_dir() {
        anyhow::bail!("{}: is a directory; give the files in it", path.display());
    }
    let (blocks, whole) = std::thread::scope(|scope| {
        let whole = scope.spawn(|| whole_digests(path, args.md5, args.sha256));
        let blocks = hash_file(path, args.threads);
        (blocks, whole.join().expect("digest thread panicked"))
    });
    let blocks = blocks.with_context(|| format!("{}: cannot read it", path.display()))?;
    let WholeDigests { md5, sha256 } =
        whole.with_context(|| format!("{}: cannot read it", path.display()))?;
    let mut fields = vec![blocks.hash.to_string()];
    fields.extend(md5.map(|d| format!("md5:{}", hex::encode(d))));
    fields.extend(sha256.map(|d| format!("sha256:{}", hex::encode(d))));
    fields.push(path.display().to_string());
    Ok(fields.join("  "))
}
