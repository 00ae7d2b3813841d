//! A crash soak: waves of files of mixed sizes (0 B, 1 B, exactly 4 MiB,
//! sizes just around the 4 MiB block, the 8 MiB chunk and the 1 MiB
//! small-file limit, the same content twice under two names) go up through
//! the real clients — `tusk upload` processes and the `tusk_client`
//! library — while the server is killed with SIGKILL again and again and
//! started again on the same data folder. Each kill comes after a random
//! amount of traffic: of bytes sent, of answers received, of chunks the
//! library saw acknowledged; or right after the server answered a request
//! whose answer a relay in front of it holds back, as if the server had
//! died between doing the work and saying so. The clients retry, and are
//! run again when they give up.
//!
//! In the end every file is listed exactly once under the name it was
//! meant to have, each downloads byte-identical to its source, each
//! content is stored once, and after `tusk sweep --orphan-age 0s` nothing
//! is left in `parts/` or `blobs/` that the catalog does not own.
//!
//! The run is seeded: the seed is printed, and `TUSK_SOAK_SEED=N` replays
//! the same files and kill points (the moments still depend on the
//! machine). It stops by itself after [`KILLS`] kills, within [`DEADLINE`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tusk_client::upload::Progress;
use tusk_client::{Client, FileInfo, UploadOptions, Uploader};
use tusk_core::ContentHash;

use crate::common::Server;

mod relay;

use relay::Relay;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// How many times the server is killed.
const KILLS: usize = 12;
/// No new wave of uploads starts after this.
const WAVES_FOR: Duration = Duration::from_secs(40);
/// The whole soak, uploads and checks, must end within this (it takes
/// 10 to 40 s in a debug build on two cores).
const DEADLINE: Duration = Duration::from_secs(120);
/// Runs of one client before the soak gives up on it.
const RUNS: usize = 40;

/// What went through the relay, and what the library saw acknowledged.
#[derive(Clone, Copy, Debug, Default)]
struct Traffic {
    /// Bytes from the clients to the server.
    up: u64,
    /// HTTP answers from the server.
    answers: u64,
    /// Chunk bytes the library was told are stored.
    acked: u64,
    /// Answers held back from their client (see [`Trigger::LostAnswer`]).
    lost: u64,
}

type Meter = Arc<watch::Sender<Traffic>>;

/// When to kill the server next, counted from now.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// After this many more bytes went up.
    Up(u64),
    /// After this many more answers came down.
    Answers(u64),
    /// After the library saw this many more chunk bytes acknowledged.
    Acked(u64),
    /// The next answer is held back from its client and the server is
    /// killed: to the client, the server died after doing what it asked
    /// and before saying so.
    LostAnswer,
}

/// A file to upload and the name it must end up under.
struct Source {
    name: String,
    path: PathBuf,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_survive_repeated_kill_9() {
    let seed = std::env::var("TUSK_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("soak seed {seed} (TUSK_SOAK_SEED={seed} replays it)");
    let started = Instant::now();
    tokio::time::timeout(DEADLINE, soak(seed))
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the soak did not end within {DEADLINE:?}"));
    println!("soak done in {:.1} s", started.elapsed().as_secs_f64());
}

async fn soak(seed: u64) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let meter: Meter = Arc::new(watch::channel(Traffic::default()).0);
    let mut server = Server::start(&data);
    let relay = Relay::start(&server.base, meter.clone()).await;
    let (up_tx, up_rx) = watch::channel(true);

    // Waves of uploads, each a fresh set of files, until the kills are
    // spent; during each, kill the server after a random amount of
    // traffic, again and again.
    let (mut sources, mut kills, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    for wave in 0.. {
        if kills.len() >= KILLS || started.elapsed() > WAVES_FOR {
            break;
        }
        let (files, cli_inputs, lib_files) = write_sources(&mut rng, &dir.path().join("src"), wave);
        sources.extend(files);
        let clients = Clients::spawn(
            &relay.base,
            &dir.path().join(format!("cache{wave}")),
            cli_inputs,
            lib_files,
            &meter,
            &up_rx,
        );
        let mut done = clients.done.clone();
        while kills.len() < KILLS {
            let trigger = match rng.random_range(0..4) {
                0 => Trigger::Up(rng.random_range(64 * KIB as u64..24 * MIB as u64)),
                1 => Trigger::Answers(rng.random_range(1..16)),
                2 => Trigger::Acked(rng.random_range(1..4) * 4 * MIB as u64),
                _ => Trigger::LostAnswer,
            };
            relay.hold_next_answer(matches!(trigger, Trigger::LostAnswer));
            let finished = tokio::select! {
                _ = reached(&meter, trigger) => false,
                _ = done.wait_for(|done| *done) => true,
            };
            relay.hold_next_answer(false);
            if finished {
                break;
            }
            up_tx.send_replace(false);
            server.kill9();
            kills.push(trigger);
            server = Server::start(&data);
            relay.retarget(&server.base);
            up_tx.send_replace(true);
        }
        runs.push(clients.all.await.unwrap());
    }
    println!(
        "{} files in {} waves, {} kills ({kills:?}); runs per client {runs:?}; {:?}; {:.1} s",
        sources.len(),
        runs.len(),
        kills.len(),
        *meter.borrow(),
        started.elapsed().as_secs_f64()
    );

    // Every file once, byte-identical.
    let client = Client::new(&server.base);
    let listed = list_all(&client).await;
    let mut by_name: BTreeMap<&str, Vec<&FileInfo>> = BTreeMap::new();
    for f in &listed {
        by_name.entry(&f.name).or_default().push(f);
    }
    let expected: BTreeSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let names: BTreeSet<&str> = by_name.keys().copied().collect();
    assert_eq!(names, expected, "seed {seed}: the names listed");
    let twice: Vec<_> = by_name.iter().filter(|(_, f)| f.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: listed more than once: {twice:#?}"
    );
    let mut contents = BTreeSet::new();
    for source in &sources {
        let bytes = std::fs::read(&source.path).unwrap();
        let file = by_name[source.name.as_str()][0];
        let hash = ContentHash::of_bytes(&bytes).to_string();
        assert_eq!(file.hash, hash, "seed {seed}: {}", source.name);
        let got = client.download(file).await.unwrap();
        assert!(got == bytes, "seed {seed}: {} differs", source.name);
        contents.insert(hash);
    }

    // Sweep what the crashes left, then compare the folders with the
    // catalog.
    server.kill9();
    let before = leftovers(&data).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["sweep", "--orphan-age", "0s", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seed {seed}: tusk sweep failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("before the sweep: {before:?}; tusk sweep: {}", said.trim());
    let after = leftovers(&data).await;
    assert!(
        after.unowned_parts.is_empty() && after.unowned_blobs.is_empty(),
        "seed {seed}: left after the sweep: {after:?}"
    );
    assert!(after.missing_blobs.is_empty(), "seed {seed}: {after:?}");
    assert_eq!(
        after.stored,
        contents.len(),
        "seed {seed}: each content stored once"
    );
}

/// One wave's clients, running.
struct Clients {
    /// How many runs each took, once all are done.
    all: tokio::task::JoinHandle<Vec<usize>>,
    /// Becomes true once all are done.
    done: watch::Receiver<bool>,
}

impl Clients {
    /// Starts a `tusk upload` process per input and a library upload per
    /// file, all through `base`.
    fn spawn(
        base: &str,
        cache: &Path,
        cli_inputs: Vec<(PathBuf, Vec<String>)>,
        lib_files: Vec<(PathBuf, String, Option<u64>)>,
        meter: &Meter,
        up: &watch::Receiver<bool>,
    ) -> Clients {
        let mut clients = tokio::task::JoinSet::new();
        for (input, extra) in cli_inputs {
            let mut args: Vec<String> = vec![
                "upload".into(),
                "--server".into(),
                base.to_owned(),
                "--cache-dir".into(),
                cache.display().to_string(),
                "--json".into(),
            ];
            args.extend(extra);
            args.push(input.display().to_string());
            clients.spawn(run_cli(args, up.clone()));
        }
        for (path, name, chunk_size) in lib_files {
            let uploader = Uploader::new(
                Client::new(base),
                &UploadOptions {
                    chunk_size,
                    parallel: 2,
                    ..UploadOptions::default()
                },
            );
            clients.spawn(run_library(uploader, path, name, meter.clone(), up.clone()));
        }
        let (done_tx, done) = watch::channel(false);
        let all = tokio::spawn(async move {
            let mut runs = Vec::new();
            while let Some(joined) = clients.join_next().await {
                runs.push(joined.expect("a client panicked"));
            }
            let _ = done_tx.send(true);
            runs
        });
        Clients { all, done }
    }
}

/// Writes the files to upload under `root`. Returns them all, the inputs of
/// the `tusk upload` processes with their extra flags, and the files the
/// library uploads (path, name, chunk size).
#[allow(clippy::type_complexity)]
fn write_sources(
    rng: &mut StdRng,
    root: &Path,
    wave: usize,
) -> (
    Vec<Source>,
    Vec<(PathBuf, Vec<String>)>,
    Vec<(PathBuf, String, Option<u64>)>,
) {
    let root = root.join(format!("w{wave}"));
    let (small, large, lib) = (
        format!("small{wave}"),
        format!("large{wave}"),
        format!("lib{wave}"),
    );
    let mut sources = Vec::new();
    let mut write = |folder: &str, file: &str, content: &[u8]| {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, content).unwrap();
        sources.push(Source {
            name: format!("{folder}/{file}"),
            path: path.clone(),
        });
        path
    };

    // Small files, posted in batches.
    let twin = random(rng, 3 * KIB, 200 * KIB);
    for (file, content) in [
        ("empty", Vec::new()),
        ("empty-too", Vec::new()),
        ("one", random(rng, 1, 1)),
        ("page", random(rng, 4 * KIB, 4 * KIB)),
        ("twin-a", twin.clone()),
        ("twin-b", twin),
        ("limit", random(rng, MIB, MIB)),
    ] {
        write(&small, file, &content);
    }
    for i in 0..24 {
        let content = random(rng, 0, 300 * KIB);
        write(&small, &format!("n{i:02}"), &content);
    }

    // Large files, each sent in chunks.
    let big = random(rng, 20 * MIB + 1, 24 * MIB);
    let block = random(rng, 4 * MIB, 4 * MIB);
    for (file, content) in [
        ("just-large", random(rng, MIB + 1, MIB + 1)),
        ("block-less-1", random(rng, 4 * MIB - 1, 4 * MIB - 1)),
        ("block", block.clone()),
        ("block-plus-1", random(rng, 4 * MIB + 1, 4 * MIB + 1)),
        ("chunk-less-1", random(rng, 8 * MIB - 1, 8 * MIB - 1)),
        ("chunk-plus-1", random(rng, 8 * MIB + 1, 8 * MIB + 1)),
        ("odd", random(rng, 12 * MIB + 1, 16 * MIB - 1)),
        ("big", big.clone()),
        ("big-again", big),
    ] {
        write(&large, file, &content);
    }

    // The library's: small chunks for many acknowledgements, and content a
    // `tusk upload` process sends too.
    let four = random(rng, 15 * MIB + 3, 15 * MIB + 3);
    let lib_files = vec![
        (
            write(&lib, "four-chunks", &four),
            format!("{lib}/four-chunks"),
            Some(4 * MIB as u64),
        ),
        (
            write(&lib, "block-copy", &block),
            format!("{lib}/block-copy"),
            None,
        ),
    ];
    let inputs = vec![
        (root.join(&small), vec!["--parallel".into(), "3".into()]),
        (root.join(&large), vec!["--parallel".into(), "2".into()]),
    ];
    (sources, inputs, lib_files)
}

/// Random bytes, between `lo` and `hi` of them.
fn random(rng: &mut StdRng, lo: usize, hi: usize) -> Vec<u8> {
    let mut v = vec![0u8; rng.random_range(lo..=hi)];
    rng.fill(&mut v[..]);
    v
}

/// Runs `tusk upload` until it succeeds, each time the server is up;
/// returns how many runs it took.
async fn run_cli(args: Vec<String>, mut up: watch::Receiver<bool>) -> usize {
    for run in 1..=RUNS {
        let _ = up.wait_for(|up| *up).await;
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
            .args(&args)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        if out.status.success() {
            return run;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("trying again"))
            .collect();
        println!("run {run} of tusk upload failed: {last:?}");
        if run == RUNS {
            panic!(
                "tusk {args:?} still fails after {RUNS} runs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    unreachable!()
}

/// Uploads one file with the library until it succeeds, starting again
/// (as a user would) when the upload gives up; how many attempts it took.
async fn run_library(
    uploader: Uploader,
    path: PathBuf,
    name: String,
    meter: Meter,
    mut up: watch::Receiver<bool>,
) -> usize {
    let hashed = tusk_client::hash_file(&path, 1).unwrap();
    let progress = Acks(meter);
    for run in 1..=RUNS {
        let _ = up.wait_for(|up| *up).await;
        match uploader
            .upload(&path, &name, &hashed, None, &progress)
            .await
        {
            Ok(_) => return run,
            Err(e) if run == RUNS => panic!("{name} still fails after {RUNS} attempts: {e}"),
            Err(e) => println!("attempt {run} at {name} failed: {e}"),
        }
    }
    unreachable!()
}

/// Counts what the library is told is stored.
struct Acks(Meter);

impl Progress for Acks {
    fn acked(&self, bytes: u64) {
        self.0.send_modify(|t| t.acked += bytes);
    }
}

/// Returns once `trigger` more traffic went by (or 48 MiB more went up,
/// so that a trigger nothing feeds any more still passes).
async fn reached(meter: &Meter, trigger: Trigger) {
    let mut rx = meter.subscribe();
    let start = *rx.borrow();
    let _ = rx
        .wait_for(|t| {
            let due = match trigger {
                Trigger::Up(n) => t.up >= start.up + n,
                Trigger::Answers(n) => t.answers >= start.answers + n,
                Trigger::Acked(n) => t.acked >= start.acked + n,
                Trigger::LostAnswer => t.lost > start.lost,
            };
            due || t.up >= start.up + 48 * MIB as u64
        })
        .await;
}

/// Every file of the listing, page by page.
async fn list_all(client: &Client) -> Vec<FileInfo> {
    let mut files = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_files(cursor.as_deref(), 1000, None)
            .await
            .unwrap();
        files.extend(page.files);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return files,
        }
    }
}

/// The store's folders compared with the catalog.
#[derive(Debug)]
struct Leftovers {
    /// Part files no unfinished upload names.
    unowned_parts: Vec<String>,
    /// Blob files neither a stored blob nor an unfinished upload names.
    unowned_blobs: Vec<String>,
    /// Stored blobs whose file is missing.
    missing_blobs: Vec<String>,
    /// Stored blobs.
    stored: usize,
}

async fn leftovers(data: &Path) -> Leftovers {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("catalog.db"))
        .read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT id FROM blobs")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let staging: BTreeSet<String> =
        sqlx::query_scalar("SELECT blob_id FROM uploads WHERE file_id IS NULL")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    db.close().await.unwrap();
    let names = |dir: &Path| -> BTreeSet<String> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (parts, blobs) = (names(&data.join("parts")), names(&data.join("blobs")));
    Leftovers {
        unowned_parts: parts.difference(&staging).cloned().collect(),
        unowned_blobs: blobs
            .iter()
            .filter(|b| !stored.contains(*b) && !staging.contains(*b))
            .cloned()
            .collect(),
        missing_blobs: stored.difference(&blobs).cloned().collect(),
        stored: stored.len(),
    }
}
