//! `tusk upload PATH...`: files and folders to the server.
//!
//! 1. The paths are walked ([`crate::walk`]). Files this machine uploaded to
//!    this server before, unchanged since and still there, are done
//!    already (unless `--force`).
//! 2. Small files (≤ 1 MiB) are read, hashed in memory and posted many per
//!    request ([`tusk_client::batch`]), several requests at a time.
//! 3. Larger files are hashed on every core (or found in the hash cache),
//!    one after the other, while earlier ones upload: check, the missing
//!    chunks (all files share `--parallel` chunk requests), complete.
//!
//! Every finished file gives one line on stdout (JSON with `--json`);
//! failures are named on stderr and make the exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use indicatif::ProgressBar;
use serde_json::json;
use tusk_client::batch::{BATCH_BYTES, BATCH_FILES, SMALL_FILE, SmallFile, post_batch};
use tusk_client::hash::{FileHash, hash_file_counting};
use tusk_client::retry::retrying;
use tusk_client::upload::Progress;
use tusk_client::{Check, ClientError, FileInfo, UploadError, UploadOptions, Uploader};

use crate::cache::{Cache, Stamp};
use crate::progress::{Bars, size};
use crate::remote::{ServerArgs, explain, explain_upload};
use crate::walk::{Entry, collect};

/// Upload files and folders (recursively; a file in a folder is named by
/// the folder's name and its path below it).
///
/// Only what the server does not hold yet is sent: content it has is
/// recorded at once, and an interrupted upload continues where the server
/// says it stopped when the same command runs again.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// Files and folders to upload.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
    /// Chunk requests in flight at once (also: small-file batches).
    #[arg(long, short = 'p', default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Chunk size to ask for, a multiple of 4 MiB (e.g. `8MiB`, `64MiB`);
    /// the server may raise it.
    #[arg(long, value_name = "SIZE", value_parser = parse_chunk_size)]
    chunk_size: Option<u64>,
    /// Print one JSON object per finished file instead of a line of text.
    #[arg(long)]
    json: bool,
    /// A folder on the server to put everything under.
    #[arg(long, value_name = "FOLDER")]
    prefix: Option<String>,
    /// Upload files again even when this machine uploaded them before
    /// and the server still has them (the server records another file).
    #[arg(long)]
    force: bool,
    /// Neither use nor update the local cache of hashes and uploads.
    #[arg(long)]
    no_cache: bool,
    /// Where the local cache lives (default: the user's cache folder).
    #[arg(long, env = "TUSK_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// How the server checks each chunk before it keeps it.
    #[arg(long, value_enum, default_value_t = CheckArg::ChunkHash)]
    check: CheckArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CheckArg {
    /// The chunk's own sha256-4m hash (free: both sides have it anyway).
    ChunkHash,
    /// RFC 9530 Content-Digest (one more SHA-256 pass on each side).
    ContentDigest,
    /// No check per chunk; the whole file is still verified at the end.
    None,
}

fn parse_chunk_size(s: &str) -> Result<u64, String> {
    let n = s
        .parse::<bytesize::ByteSize>()
        .map_err(|e| format!("not a size ({e}); e.g. 8MiB"))?
        .as_u64();
    if n == 0 || n % tusk_core::hash::BLOCK_SIZE != 0 {
        return Err(format!(
            "{n} bytes is not a multiple of 4 MiB (4194304); e.g. 8MiB"
        ));
    }
    Ok(n)
}

/// How one file ended.
enum Status {
    Uploaded {
        chunks: usize,
        sent: u64,
        resumed: u64,
    },
    Instant,
    /// Uploaded by an earlier run, unchanged, still on the server.
    Exists,
}

struct Shared {
    server: String,
    cache: Cache,
    bars: Bars,
    json: bool,
    sent: ProgressBar,
    done_files: AtomicU64,
    total_files: u64,
    failed: AtomicU64,
    counts: [AtomicU64; 3],
}

impl Shared {
    async fn finished(&self, entry: &Entry, file: &FileInfo, status: Status, remember: bool) {
        if remember {
            self.cache
                .put_uploaded(
                    &self.server,
                    &entry.key,
                    &entry.name,
                    &entry.stamp,
                    &file.hash,
                    &file.id,
                )
                .await;
        }
        let url = format!("{}{}", self.server, file.url);
        let (word, slot) = match status {
            Status::Uploaded { .. } => ("uploaded", 0),
            Status::Instant => ("instant", 1),
            Status::Exists => ("exists", 2),
        };
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let done = self.done_files.fetch_add(1, Ordering::Relaxed) + 1;
        self.sent
            .set_message(format!("{done}/{} files", self.total_files));
        if self.json {
            let (chunks, sent, resumed) = match status {
                Status::Uploaded {
                    chunks,
                    sent,
                    resumed,
                } => (chunks, sent, resumed),
                _ => (0, 0, 0),
            };
            let line = json!({
                "path": entry.path.to_string_lossy(),
                "id": file.id,
                "name": file.name,
                "size": file.size,
                "hash": file.hash,
                "url": url,
                "instant": slot != 0,
                "status": word,
                "chunks_sent": chunks,
                "bytes_sent": sent,
                "resumed_bytes": resumed,
            });
            self.bars.println(&line.to_string());
        } else {
            self.bars.println(&format!(
                "{word:<8}  {:>10}  {}  {url}",
                size(file.size),
                file.name
            ));
        }
    }

    fn failed(&self, entry: &std::path::Path, why: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.bars
            .note(&format!("tusk upload: {}: {why}", entry.display()));
    }
}

pub async fn run(args: UploadArgs) -> ExitCode {
    let started = Instant::now();
    if let Err(why) = crate::remote::reachable(&args.server.client()).await {
        eprintln!("tusk upload: {why}");
        return ExitCode::FAILURE;
    }
    let (entries, unreadable) = collect(&args.paths, args.prefix.as_deref());
    let cache = match (&args.cache_dir, args.no_cache) {
        (_, true) => Cache::off(),
        (Some(dir), _) => Cache::open(dir).await,
        (None, _) => match crate::cache::default_dir() {
            Some(dir) => Cache::open(&dir).await,
            None => Cache::off(),
        },
    };
    let bars = Bars::new();
    let total_bytes: u64 = entries.iter().map(|e| e.stamp.size).sum();
    let large_bytes: u64 = entries
        .iter()
        .filter(|e| e.stamp.size > SMALL_FILE)
        .map(|e| e.stamp.size)
        .sum();
    let hashing = bars.total("hashing", large_bytes);
    if large_bytes == 0 {
        hashing.finish_and_clear();
    }
    let sent = bars.total("upload", total_bytes);
    let shared = Arc::new(Shared {
        server: args.server.server.clone(),
        cache,
        bars: bars.clone(),
        json: args.json,
        sent,
        done_files: AtomicU64::new(0),
        total_files: entries.len() as u64,
        failed: AtomicU64::new(0),
        counts: Default::default(),
    });
    for (path, why) in &unreadable {
        shared.failed(path, why);
    }
    let opts = UploadOptions {
        parallel: args.parallel as usize,
        chunk_size: args.chunk_size,
        check: match args.check {
            CheckArg::ChunkHash => Check::ChunkHash,
            CheckArg::ContentDigest => Check::ContentDigest,
            CheckArg::None => Check::None,
        },
        ..UploadOptions::default()
    };
    let uploader = Uploader::new(args.server.client(), &opts);

    let todo = if args.force {
        entries
    } else {
        skip_uploaded(&uploader, &shared, entries).await
    };
    let (small, large): (Vec<Entry>, Vec<Entry>) =
        todo.into_iter().partition(|e| e.stamp.size <= SMALL_FILE);
    tokio::join!(
        small_files(&uploader, &shared, small, args.parallel as usize),
        large_files(&uploader, &shared, large, &hashing, args.parallel as usize),
    );
    hashing.finish_and_clear();
    shared.sent.finish_and_clear();

    let failed = shared.failed.load(Ordering::Relaxed);
    let [uploaded, instant, exists] = shared.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
    eprintln!(
        "tusk upload: {} files ({}) in {:.1} s: {uploaded} uploaded, {instant} instant, \
         {exists} already there, {failed} failed",
        uploaded + instant + exists,
        size(total_bytes),
        started.elapsed().as_secs_f64(),
    );
    if failed > 0 {
        eprintln!("tusk upload: run the same command again to retry what failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Leaves out the entries an earlier run uploaded to this server, that are
/// unchanged since and whose file the server still has with that content.
/// Asking is retried like any request; a file the server cannot be asked
/// about fails (the next run asks again) rather than being uploaded again,
/// which would record it twice.
async fn skip_uploaded(
    uploader: &Uploader,
    shared: &Arc<Shared>,
    entries: Vec<Entry>,
) -> Vec<Entry> {
    let results: Vec<Option<Entry>> = futures::stream::iter(entries)
        .map(|entry| async move {
            let Some((id, hash)) = shared
                .cache
                .uploaded(&shared.server, &entry.key, &entry.name, &entry.stamp)
                .await
            else {
                return Some(entry);
            };
            let client = uploader.client();
            let asked = retrying(
                || client.file(&id),
                |e, w| shared.bars.retrying(&entry.name, e, w),
            )
            .await;
            match asked {
                Ok(file) if file.hash == hash => {
                    shared.sent.inc(entry.stamp.size);
                    shared.finished(&entry, &file, Status::Exists, false).await;
                    None
                }
                // Deleted, or replaced: upload it again.
                Ok(_) => Some(entry),
                Err(e) if e.status().is_some_and(|s| s.is_client_error()) => Some(entry),
                Err(e) => {
                    shared.failed(&entry.path, &explain(&e, &shared.server));
                    None
                }
            }
        })
        .buffered(16)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

/// Small files: read and hashed in memory, posted in batches.
async fn small_files(
    uploader: &Uploader,
    shared: &Arc<Shared>,
    entries: Vec<Entry>,
    parallel: usize,
) {
    let mut batches: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let full = batches
            .last()
            .is_none_or(|b| b.len() >= BATCH_FILES || bytes + entry.stamp.size > BATCH_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += entry.stamp.size;
        batches.last_mut().expect("a batch").push(entry);
    }
    futures::stream::iter(batches)
        .for_each_concurrent(parallel, |batch| async move {
            let read = tokio::task::spawn_blocking(move || read_batch(batch))
                .await
                .expect("reading files does not panic");
            let mut files = Vec::new();
            let mut sent = Vec::new();
            for (entry, result) in read {
                match result {
                    Ok((file, stamp)) => {
                        files.push(file);
                        sent.push((entry, stamp));
                    }
                    Err(e) => shared.failed(&entry.path, &e.to_string()),
                }
            }
            if files.is_empty() {
                return;
            }
            let posted = post_batch(uploader.client(), &files, |e, w| {
                shared.bars.retrying("a batch of small files", e, w)
            })
            .await;
            match posted {
                Ok(stored) => {
                    for ((entry, stamp), file) in sent.iter().zip(&stored) {
                        shared.sent.inc(file.size);
                        let status = Status::Uploaded {
                            chunks: 0,
                            sent: file.size,
                            resumed: 0,
                        };
                        // A file that changed while read was sent as read;
                        // the next run looks at it again.
                        shared
                            .finished(entry, file, status, *stamp == entry.stamp)
                            .await;
                    }
                }
                Err(e) => {
                    let why = explain(&e, &shared.server);
                    for (entry, _) in &sent {
                        shared.failed(&entry.path, &why);
                    }
                }
            }
        })
        .await;
}

/// Reads each file of a batch, with its stamp after the read.
fn read_batch(batch: Vec<Entry>) -> Vec<(Entry, std::io::Result<(SmallFile, Stamp)>)> {
    batch
        .into_iter()
        .map(|entry| {
            let read = std::fs::read(&entry.path).and_then(|bytes| {
                let stamp = Stamp::of(&std::fs::metadata(&entry.path)?);
                let file = SmallFile::new(entry.name.clone(), None, Bytes::from(bytes));
                Ok((file, stamp))
            });
            (entry, read)
        })
        .collect()
}

/// Large files: hashed one after the other on every core, uploaded while
/// the next ones hash.
async fn large_files(
    uploader: &Uploader,
    shared: &Arc<Shared>,
    entries: Vec<Entry>,
    hashing: &ProgressBar,
    parallel: usize,
) {
    futures::stream::iter(entries)
        .then(|entry| async move {
            let hashed = hash(shared, &entry, hashing).await;
            (entry, hashed)
        })
        .for_each_concurrent(parallel, |(entry, hashed)| async move {
            let hashed = match hashed {
                Ok(h) => h,
                Err(e) => return shared.failed(&entry.path, &format!("cannot read it: {e}")),
            };
            let bar = shared.bars.file(&entry.name, hashed.size);
            let watcher = Watch {
                shared,
                file: &bar,
                name: &entry.name,
            };
            let result = uploader
                .upload(&entry.path, &entry.name, &hashed, None, &watcher)
                .await;
            bar.finish_and_clear();
            match result {
                Ok(report) => {
                    let status = if report.instant {
                        Status::Instant
                    } else {
                        Status::Uploaded {
                            chunks: report.chunks_sent,
                            sent: report.bytes_sent,
                            resumed: report.resumed_bytes,
                        }
                    };
                    shared.finished(&entry, &report.file, status, true).await;
                }
                Err(e) => {
                    if matches!(e, UploadError::Changed) {
                        shared.cache.forget_hash(&entry.key).await;
                    }
                    shared.failed(&entry.path, &explain_upload(&e, &shared.server));
                }
            }
        })
        .await;
}

/// The file's hash: from the cache when its stamp still matches, else read
/// on every core (and remembered).
async fn hash(shared: &Shared, entry: &Entry, bar: &ProgressBar) -> std::io::Result<FileHash> {
    if let Some(known) = shared.cache.hash(&entry.key, &entry.stamp).await {
        tracing::debug!(path = %entry.path.display(), "hash from the cache");
        bar.inc(entry.stamp.size);
        return Ok(known);
    }
    let hashed_at = SystemTime::now();
    let counter = Arc::new(AtomicU64::new(0));
    let path = entry.path.clone();
    let work = {
        let counter = counter.clone();
        tokio::task::spawn_blocking(move || {
            let hashed = hash_file_counting(&path, 0, &counter)?;
            let stamp = Stamp::of(&std::fs::metadata(&path)?);
            Ok::<_, std::io::Error>((hashed, stamp))
        })
    };
    let start = bar.position();
    let ticker = {
        let (bar, counter) = (bar.clone(), counter.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(start + counter.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let result = work.await.map_err(std::io::Error::other);
    ticker.abort();
    let (hashed, after) = result??;
    bar.set_position(start + entry.stamp.size);
    // A file that changed while it was hashed is not remembered; the
    // server's checks of each chunk will tell whether the hash still holds.
    if after == entry.stamp {
        shared
            .cache
            .put_hash(&entry.key, &entry.stamp, hashed_at, &hashed)
            .await;
    }
    Ok(hashed)
}

/// Feeds one file's progress into its bar and the total.
struct Watch<'a> {
    shared: &'a Shared,
    file: &'a ProgressBar,
    name: &'a str,
}

impl Progress for Watch<'_> {
    fn already(&self, bytes: u64) {
        self.file.inc(bytes);
        self.shared.sent.inc(bytes);
    }
    fn acked(&self, bytes: u64) {
        self.file.inc(bytes);
        self.shared.sent.inc(bytes);
    }
    fn retrying(&self, error: &ClientError, wait: Duration) {
        self.shared.bars.retrying(self.name, error, wait);
    }
}
