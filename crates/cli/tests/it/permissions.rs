//! The data folder belongs to the server's user alone: whatever the umask,
//! `tusk token create` and `tusk serve` create folders 0700 and files 0600
//! (the catalog with its `-wal` and `-shm`, blobs, part files, locks), and
//! a folder left with looser modes is tightened when the server starts.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::Server;
use serde_json::json;

/// `tusk` with `umask` set in the child before it runs.
fn tusk(umask: u32) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tusk"));
    command.env_remove("TUSK_TOKEN").env_remove("TUSK_SERVER");
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every folder and file under `dir` (itself included) with its mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut all = vec![(dir.display().to_string(), mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(modes(&path));
        } else {
            all.push((path.display().to_string(), mode(&path)));
        }
    }
    all
}

/// Folders 0700 and files 0600, everywhere under `dir`.
fn assert_private(dir: &Path) {
    for (path, mode) in modes(dir) {
        let want = if Path::new(&path).is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode, want, "{path} is {mode:o}, not {want:o}");
    }
}

#[tokio::test]
async fn the_data_folder_is_private_whatever_the_umask() {
    for umask in [0o022, 0o000] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The token command may be the first to create the folder.
        let out = tusk(umask)
            .args(["token", "create", "--name", "alice", "--data"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_private(&data);
        assert!(data.join("catalog.db").exists());

        let mut command = tusk(umask);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data);
        let server = Server::spawn(command);
        let http = reqwest::Client::new();
        // A finished blob (a small file through a form) …
        let r = http
            .post(server.url("/api/v1/files"))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part(
                "f",
                reqwest::multipart::Part::bytes(b"secret".to_vec()).file_name("s.txt"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // … and an upload in progress (a part file).
        let r = http
            .post(server.url("/api/v1/uploads"))
            .bearer_auth(&token)
            .json(&json!({ "name": "big", "size": 10 << 20, "hash": format!("sha256-4m:{}", "1".repeat(64)) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // While the server runs, the catalog has its -wal and -shm files.
        assert!(data.join("catalog.db-wal").exists());
        assert!(data.join("parts").read_dir().unwrap().next().is_some());
        assert_private(&data);
        drop(server);
    }
}

#[tokio::test]
async fn a_data_folder_with_loose_modes_is_tightened_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(Server::start(&data));
    let loosen = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    loosen(&data, 0o755);
    loosen(&data.join("blobs"), 0o755);
    loosen(&data.join("parts"), 0o777);
    loosen(&data.join("catalog.db"), 0o644);

    let server = Server::start(&data);
    assert_eq!(mode(&data.join("blobs")), 0o700);
    assert_eq!(mode(&data.join("parts")), 0o700);
    assert_eq!(mode(&data.join("catalog.db")), 0o600);
    // The folder itself may hold more than tusk's files: left as it is.
    assert_eq!(mode(&data), 0o755);
    drop(server);
}
