//! The real `tusk` binary as a child process.

#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `tusk serve` child process.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts the binary and waits for its "listening on" line.
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[], &[])
    }

    /// Starts it with extra arguments and environment variables.
    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_at(data, "127.0.0.1:0", args, env)
    }

    /// Starts it listening on `addr`.
    pub fn start_at(data: &Path, addr: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tusk"));
        command
            .args(["serve", "--listen", addr, "--data"])
            .arg(data)
            .args(args)
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Starts `command` (a `tusk serve` command line) with stdout piped and
    /// stderr dropped, and waits for its "listening on" line.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tusk");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A variable set by `tests/backends/start` (through scripts/test).
pub fn backend_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, or tests/backends/start DIR and source DIR/env"
        )
    })
}

/// A name no other test run uses.
pub fn fresh_name(kind: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ ((std::process::id() as u64) << 40);
    format!("tusk_{kind}_{n:x}")
}

/// `tusk serve` arguments for the scale-out backends: a fresh key prefix in
/// the test S3 bucket and a fresh PostgreSQL database. Returns them with the
/// prefix.
pub async fn scale_out_args() -> (Vec<String>, String) {
    use sqlx::Connection;
    let admin = backend_env("TUSK_TEST_POSTGRES");
    let db = fresh_name("db");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (before_query, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = before_query.rsplit_once('/').unwrap();
    let prefix = fresh_name("prefix");
    let args = vec![
        "--store".to_owned(),
        format!("s3://{}/{prefix}", backend_env("TUSK_TEST_S3_BUCKET")),
        "--s3-endpoint".to_owned(),
        backend_env("TUSK_TEST_S3_ENDPOINT"),
        "--catalog".to_owned(),
        format!("{server}/{db}?{query}"),
    ];
    (args, prefix)
}
