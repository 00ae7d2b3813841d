//! `tusk upload`, `download`, `ls` and `rm` as a user runs them: the real
//! binary against a real `tusk serve` on loopback, sometimes through a
//! relay that counts (and slows) the bytes, so what was really sent after
//! a `kill -9` can be checked.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tusk_core::ContentHash;

use crate::common;

use common::Server;
use common::proxy::{Proxy, Throttle};

const MIB: usize = 1 << 20;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ len as u64;
    for b in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    v
}

/// A temporary folder, a server on its `data`, and the client's cache
/// folder in it.
fn setup() -> (tempfile::TempDir, Server, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let cache = dir.path().join("cache");
    (dir, server, cache)
}

/// Writes `len` random bytes (from `seed`) to `dir/name`.
fn write_random(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = random_bytes(len, seed);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// `tusk ARGS` with its own cache folder, waited for.
fn tusk(cache: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .env("TUSK_CACHE_DIR", cache)
        .env_remove("TUSK_SERVER")
        .output()
        .expect("run tusk")
}

/// `tusk ARGS` started, not waited for.
fn spawn_tusk(cache: &Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .env("TUSK_CACHE_DIR", cache)
        .env_remove("TUSK_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tusk")
}

fn ok(out: &Output) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tusk failed: {:?}\n{stderr}",
        out.status
    );
    lines(out)
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// What the server says about an upload of `data` named `name`: the check
/// resumes the unfinished upload (200) and lists its received chunks.
async fn received(base: &str, name: &str, data: &[u8]) -> (Vec<u64>, u64) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/uploads"))
        .json(&json!({
            "name": name,
            "size": data.len(),
            "hash": ContentHash::of_bytes(data).to_string(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "an unfinished upload to resume");
    let body: Value = response.json().await.unwrap();
    let upload = &body["upload"];
    let received = upload["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    (received, upload["chunk_size"].as_u64().unwrap())
}

#[test]
fn a_folder_of_50_files_goes_up_and_every_file_comes_back_byte_for_byte() {
    let (dir, server, cache) = setup();
    let top = dir.path().join("mixed");
    let mut sizes = vec![
        0,
        1,
        2,
        100,
        4095,
        4096,
        4097,
        65536,
        MIB - 1,
        MIB,
        MIB + 1,
        2 * MIB,
        4 * MIB - 1,
        4 * MIB,
        4 * MIB + 1,
        8 * MIB,
        8 * MIB + 1,
        12 * MIB + 5,
        40 * MIB,
    ];
    for i in 0..31u64 {
        sizes.push((random_bytes(8, i)[0] as usize) * 1171 + i as usize);
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let sub = top
            .join(format!("d{}", i % 4))
            .join(if i % 3 == 0 { "deep" } else { "" });
        std::fs::create_dir_all(&sub).unwrap();
        // Two pairs share their content: two small files (one batch) and
        // two 8 MiB files.
        let (size, seed) = match i {
            49 => (sizes[30], 30),
            13 => (sizes[15], 15),
            _ => (size, i as u64),
        };
        let data = random_bytes(size, seed);
        let path = sub.join(format!("f{i:02}.bin"));
        std::fs::write(&path, &data).unwrap();
        files.push((path, data));
    }
    assert_eq!(files.len(), 50);

    let out = tusk(
        &cache,
        &[
            "upload",
            top.to_str().unwrap(),
            "--json",
            "--server",
            &server.base,
        ],
    );
    let reported = ok(&out);
    assert_eq!(reported.len(), 50, "one line per file");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for (path, data) in &files {
        let below = path
            .strip_prefix(dir.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let line = reported
            .iter()
            .find(|l| l["name"] == below)
            .unwrap_or_else(|| panic!("{below} was not reported"));
        assert_eq!(line["size"], data.len());
        assert_eq!(line["hash"], ContentHash::of_bytes(data).to_string());
        let url = line["url"].as_str().unwrap();
        let saved = out_dir.join(below.replace('/', "_"));
        let got = ok(&tusk(
            &cache,
            &["download", url, "-o", saved.to_str().unwrap(), "--json"],
        ));
        assert_eq!(got[0]["status"], "downloaded");
        let back = std::fs::read(&saved).unwrap();
        assert!(back == *data, "{below} came back different");
    }

    // The listing shows the 50 files, newest first.
    let listed = ok(&tusk(&cache, &["ls", "--json", "--server", &server.base]));
    assert_eq!(listed.len(), 50);
    let small = ok(&tusk(
        &cache,
        &["ls", "deep", "--json", "--server", &server.base],
    ));
    assert_eq!(
        small.len(),
        sizes.iter().enumerate().filter(|(i, _)| i % 3 == 0).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_killed_midway_continues_with_only_the_missing_chunks() {
    let (dir, server, cache) = setup();
    let (path, data) = write_random(dir.path(), "big.bin", 100 * MIB, 7);
    let path = path.to_str().unwrap();

    // Slowed to 25 MiB/s up, so the kill lands in the middle.
    let slow = Proxy::start(&server.base, Throttle::Up(25 * MIB as u64)).await;
    let mut child = spawn_tusk(
        &cache,
        &[
            "upload",
            path,
            "--json",
            "--chunk-size",
            "4MiB",
            "--server",
            &slow.base,
        ],
    );
    slow.up.reached(40 * MIB as u64).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();

    let (before, chunk_size) = received(&server.base, "big.bin", &data).await;
    assert_eq!(chunk_size, 4 * MIB as u64);
    assert!(
        !before.is_empty(),
        "some chunks were acknowledged before the kill"
    );
    assert!(before.len() < 25, "the kill came before the end");

    let counted = Proxy::start(&server.base, Throttle::None).await;
    let out = tusk(
        &cache,
        &[
            "upload",
            path,
            "--json",
            "--chunk-size",
            "4MiB",
            "--server",
            &counted.base,
        ],
    );
    let line = &ok(&out)[0];
    assert_eq!(line["status"], "uploaded");
    assert_eq!(line["hash"], ContentHash::of_bytes(&data).to_string());
    let resumed = line["resumed_bytes"].as_u64().unwrap();
    let sent = line["bytes_sent"].as_u64().unwrap();
    // Chunks the server finished after the check above are not sent either.
    assert!(resumed >= before.len() as u64 * chunk_size);
    assert_eq!(resumed + sent, data.len() as u64);
    assert_eq!(line["chunks_sent"].as_u64().unwrap(), sent / chunk_size);
    // What went over the wire: the missing chunks, requests' headers and
    // the JSON of the check and the complete, nothing more.
    let up = counted.up.get();
    assert!(up >= sent, "{up} bytes carried less than the {sent} sent");
    assert!(
        up < sent + 64 * 1024,
        "{up} bytes for {sent} bytes of missing chunks"
    );

    let saved = dir.path().join("back.bin");
    let url = line["url"].as_str().unwrap();
    ok(&tusk(
        &cache,
        &["download", url, "-o", saved.to_str().unwrap(), "--json"],
    ));
    assert!(std::fs::read(&saved).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_rides_out_a_server_killed_and_restarted_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let cache = dir.path().join("cache");
    let (path, data) = write_random(dir.path(), "big.bin", 64 * MIB + 3, 11);

    let slow = Proxy::start(&server.base, Throttle::Up(25 * MIB as u64)).await;
    let child = spawn_tusk(
        &cache,
        &[
            "upload",
            path.to_str().unwrap(),
            "--json",
            "--chunk-size",
            "4MiB",
            "--server",
            &slow.base,
        ],
    );
    slow.up.reached(24 * MIB as u64).await;
    server.kill9();
    // Back on the same address and data folder; the relay reaches it there.
    let again = Server::start_at(&data_dir, &addr, &[], &[]);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("trying again"),
        "the lost requests were retried: {stderr}"
    );
    let line = &lines(&out)[0];
    assert_eq!(line["status"], "uploaded");
    let saved = dir.path().join("back.bin");
    ok(&tusk(
        &cache,
        &[
            "download",
            line["id"].as_str().unwrap(),
            "-o",
            saved.to_str().unwrap(),
            "--json",
            "--server",
            &again.base,
        ],
    ));
    assert!(std::fs::read(&saved).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_an_upload_with_130_and_says_how_to_go_on() {
    let (dir, server, cache) = setup();
    let (path, data) = write_random(dir.path(), "big.bin", 48 * MIB, 12);
    let path = path.to_str().unwrap();

    let slow = Proxy::start(&server.base, Throttle::Up(16 * MIB as u64)).await;
    let child = spawn_tusk(
        &cache,
        &[
            "upload",
            path,
            "--json",
            "--chunk-size",
            "4MiB",
            "--server",
            &slow.base,
        ],
    );
    slow.up.reached(16 * MIB as u64).await;
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: a signal to our own child, which is still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing finished");

    let line = &ok(&tusk(
        &cache,
        &[
            "upload",
            path,
            "--json",
            "--chunk-size",
            "4MiB",
            "--server",
            &server.base,
        ],
    ))[0];
    assert!(line["resumed_bytes"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(line["hash"], ContentHash::of_bytes(&data).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_midway_continues_from_its_part_file() {
    let (dir, server, cache) = setup();
    let (path, data) = write_random(dir.path(), "big.bin", 100 * MIB + 12345, 8);
    let line = &ok(&tusk(
        &cache,
        &[
            "upload",
            path.to_str().unwrap(),
            "--json",
            "--server",
            &server.base,
        ],
    ))[0];
    let id = line["id"].as_str().unwrap().to_owned();

    let dest = dir.path().join("got.bin");
    let part = dir.path().join("got.bin.part");
    let slow = Proxy::start(&server.base, Throttle::Down(25 * MIB as u64)).await;
    let mut child = spawn_tusk(
        &cache,
        &[
            "download",
            &id,
            "-o",
            dest.to_str().unwrap(),
            "--server",
            &slow.base,
        ],
    );
    slow.down.reached(40 * MIB as u64).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        !dest.exists(),
        "nothing is put in place before it is complete"
    );
    let kept = std::fs::metadata(&part).expect("a .part file").len();
    assert!(kept > 0 && kept < data.len() as u64, "{kept}");
    assert!(
        std::fs::read(&part).unwrap() == data[..kept as usize],
        "the part file holds the file's first bytes"
    );

    let counted = Proxy::start(&server.base, Throttle::None).await;
    let out = tusk(
        &cache,
        &[
            "download",
            &id,
            "-o",
            dest.to_str().unwrap(),
            "--json",
            "--server",
            &counted.base,
        ],
    );
    let got = &ok(&out)[0];
    let from = got["resumed_from"].as_u64().unwrap();
    assert_eq!(
        from,
        kept / (4 * MIB as u64) * (4 * MIB as u64),
        "whole blocks are kept"
    );
    assert!(from > 0);
    let fetched = got["bytes_fetched"].as_u64().unwrap();
    assert_eq!(from + fetched, data.len() as u64);
    let down = counted.down.get();
    assert!(
        down >= fetched && down < fetched + 64 * 1024,
        "{down} bytes for {fetched}"
    );
    assert!(std::fs::read(&dest).unwrap() == data);
    assert!(!part.exists());
}

#[test]
fn a_duplicate_is_instant_and_a_rerun_records_nothing_twice() {
    let (dir, server, cache) = setup();
    let data = random_bytes(9 * MIB, 9);
    let a = dir.path().join("a.bin");
    let b = dir.path().join("copy-of-a.bin");
    std::fs::write(&a, &data).unwrap();
    std::fs::write(&b, &data).unwrap();
    let up = |path: &Path, extra: &[&str]| {
        let mut args = vec![
            "upload",
            path.to_str().unwrap(),
            "--json",
            "--server",
            &server.base,
        ];
        args.extend_from_slice(extra);
        ok(&tusk(&cache, &args)).remove(0)
    };
    let first = up(&a, &[]);
    assert_eq!(first["status"], "uploaded");
    assert_eq!(first["instant"], false);
    assert_eq!(first["bytes_sent"], data.len());

    let copy = up(&b, &[]);
    assert_eq!(copy["status"], "instant");
    assert_eq!(copy["instant"], true);
    assert_eq!(copy["bytes_sent"], 0);
    assert_ne!(copy["id"], first["id"], "a file of its own");

    // The same file again: the earlier upload is found, nothing recorded.
    let again = up(&a, &[]);
    assert_eq!(again["status"], "exists");
    assert_eq!(again["id"], first["id"]);
    let listed = ok(&tusk(&cache, &["ls", "--json", "--server", &server.base]));
    assert_eq!(listed.len(), 2);

    // --force records it again, instantly.
    let forced = up(&a, &["--force"]);
    assert_eq!(forced["status"], "instant");
    assert_ne!(forced["id"], first["id"]);

    // Once deleted on the server, it is uploaded again (instant: the copy
    // still holds the content).
    let rm = tusk(
        &cache,
        &[
            "rm",
            first["id"].as_str().unwrap(),
            forced["id"].as_str().unwrap(),
            "--server",
            &server.base,
        ],
    );
    assert!(rm.status.success());
    let back = up(&a, &[]);
    assert_eq!(back["status"], "instant");
}

#[test]
fn a_changed_file_is_hashed_again_even_with_the_same_size_and_mtime() {
    let (dir, server, cache) = setup();
    let path = dir.path().join("v.bin");
    let one = random_bytes(6 * MIB, 10);
    std::fs::write(&path, &one).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    // The cache keeps only hashes of files that had stopped changing two
    // seconds before they were hashed: this wait is that rule, so that the
    // first upload does fill the cache.
    std::thread::sleep(Duration::from_millis(2100));
    let upload = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
            .args([
                "upload",
                path.to_str().unwrap(),
                "--json",
                "--force",
                "--server",
                &server.base,
            ])
            .env("TUSK_CACHE_DIR", &cache)
            .env("RUST_LOG", "tusk=debug")
            .output()
            .unwrap();
        let line = ok(&out).remove(0);
        (line, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (first, log) = upload();
    assert_eq!(first["hash"], ContentHash::of_bytes(&one).to_string());
    assert!(!log.contains("hash from the cache"), "{log}");
    let (second, log) = upload();
    assert_eq!(second["hash"], first["hash"]);
    assert!(
        log.contains("hash from the cache"),
        "the second run uses the cache: {log}"
    );

    // Same size, same mtime, other bytes.
    let mut two = one.clone();
    two[5 * MIB] ^= 0xff;
    std::fs::write(&path, &two).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (third, log) = upload();
    assert!(!log.contains("hash from the cache"), "{log}");
    assert_eq!(third["hash"], ContentHash::of_bytes(&two).to_string());
    assert_eq!(third["status"], "uploaded");
}

#[test]
fn bad_arguments_exit_2_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for (args, says) in [
        (&["upload"][..], "<PATH>"),
        (&["upload", "x", "--parallel", "0"], "--parallel"),
        (
            &["upload", "x", "--chunk-size", "5MiB"],
            "multiple of 4 MiB",
        ),
        (&["upload", "x", "--server", "ftp://host"], "http://"),
        (&["download", "not-an-id"], "not a file id"),
        (&["download"], "<ID|URL>"),
        (&["rm", "123"], "not a file id"),
        (&["ls", "--limit", "many"], "--limit"),
        (&["fly"], "unrecognized subcommand"),
    ] {
        let out = tusk(&cache, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says}: {stderr}"
        );
        assert!(stderr.contains("--help"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn failures_are_named_and_exit_1_while_the_rest_goes_up() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let good = dir.path().join("good.txt");
    std::fs::write(&good, b"good").unwrap();
    let missing = dir.path().join("missing.txt");

    // No server there: said at once, with what to do.
    let out = tusk(
        &cache,
        &[
            "upload",
            good.to_str().unwrap(),
            "--server",
            "http://127.0.0.1:9",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the server at http://127.0.0.1:9"),
        "{stderr}"
    );
    assert!(stderr.contains("tusk serve"), "{stderr}");

    let server = Server::start(&dir.path().join("data"));
    let out = tusk(
        &cache,
        &[
            "upload",
            good.to_str().unwrap(),
            missing.to_str().unwrap(),
            "--json",
            "--server",
            &server.base,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.txt"), "{stderr}");
    let done = lines(&out);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["name"], "good.txt");

    let out = tusk(
        &cache,
        &[
            "rm",
            "0123456789abcdef0123456789abcdef",
            "--server",
            &server.base,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("0123456789abcdef0123456789abcdef") && stderr.contains("tusk ls"));
}
