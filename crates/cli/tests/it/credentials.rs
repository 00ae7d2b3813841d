//! The token goes only to the server it belongs to (`--server`: scheme,
//! host and port). A download URL of another origin is fetched without
//! it, and so is another origin a server redirects to. Two real listeners
//! on 127.0.0.1: the tusk server, and a plain one that records the
//! headers of every request it gets (different ports: different origins).

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::Server;
use serde_json::Value;

/// The header lines of one request, names in lower case (the request
/// line first, as `request`).
type Head = Vec<(String, String)>;

/// A plain HTTP listener that records each request's head and answers
/// with a redirect to `redirect` + the path, or else 404.
struct Recorder {
    base: String,
    heads: Arc<Mutex<Vec<Head>>>,
}

impl Recorder {
    fn start(redirect: Option<String>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        // Ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = Vec::new();
                let mut path = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if head.is_empty() {
                        path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                        head.push(("request".into(), line.to_owned()));
                    } else if let Some((name, value)) = line.split_once(':') {
                        head.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
                seen.lock().unwrap().push(head);
                let answer = match &redirect {
                    Some(to) => format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}{path}\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    None => {
                        let body = r#"{"error":{"code":"not_found","message":"no such endpoint"}}"#;
                        format!(
                            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Recorder { base, heads }
    }

    /// The `Authorization` of every request received so far.
    fn authorizations(&self) -> Vec<Option<String>> {
        let heads = self.heads.lock().unwrap();
        heads
            .iter()
            .map(|h| {
                h.iter()
                    .find(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

fn tusk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .env_remove("TUSK_SERVER")
        .env_remove("TUSK_TOKEN")
        .env("TUSK_CACHE_DIR", std::env::temp_dir())
        .output()
        .expect("run tusk")
}

/// A server with a token and one file; the token and the file's URL path.
async fn server_with_a_file(data: &std::path::Path) -> (Server, String, String) {
    let out = tusk(&[
        "token",
        "create",
        "--name",
        "ann",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = Server::start(data);
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/files"))
        .bearer_auth(&token)
        .multipart(reqwest::multipart::Form::new().part(
            "f",
            reqwest::multipart::Part::bytes(b"for ann only".to_vec()).file_name("ann.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let url = body["files"][0]["url"].as_str().unwrap().to_owned();
    (server, token, url)
}

#[tokio::test]
async fn a_download_url_of_another_origin_gets_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token, url) = server_with_a_file(&dir.path().join("data")).await;
    let other = Recorder::start(None);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.to_str().unwrap();

    let elsewhere = format!("{}{url}", other.base);
    let got = tusk(&[
        "download",
        &elsewhere,
        "--server",
        &server.base,
        "--token",
        &token,
        "-o",
        out,
    ]);
    assert!(!got.status.success(), "the other origin has no such file");
    let seen = other.authorizations();
    assert!(!seen.is_empty(), "the other origin was asked");
    assert!(
        seen.iter().all(Option::is_none),
        "the token leaked: {seen:?}"
    );

    // The same URL on the server's own origin carries it.
    let own = format!("{}{url}", server.base);
    let got = tusk(&[
        "download",
        &own,
        "--server",
        &server.base,
        "--token",
        &token,
        "-o",
        out,
    ]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(
        std::fs::read(out_dir.join("ann.txt")).unwrap(),
        b"for ann only"
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_drops_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, token, url) = server_with_a_file(&dir.path().join("data")).await;
    let other = Recorder::start(None);
    // Plays the configured server, sending every request on elsewhere.
    let redirector = Recorder::start(Some(other.base.clone()));
    let id = url.split('/').nth(2).unwrap();
    let got = tusk(&[
        "download",
        id,
        "--server",
        &redirector.base,
        "--token",
        &token,
    ]);
    assert!(!got.status.success());
    let bearer = format!("Bearer {token}");
    let asked = redirector.authorizations();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|a| a.as_deref() == Some(bearer.as_str())),
        "--server gets the token: {asked:?}"
    );
    let seen = other.authorizations();
    assert!(!seen.is_empty(), "the redirect was followed");
    assert!(
        seen.iter().all(Option::is_none),
        "the token leaked: {seen:?}"
    );
}
