//! A real tusk server on 127.0.0.1:0 over a temporary data folder, and
//! helpers to speak to it.

#![allow(dead_code)]

pub mod tus;
pub mod who;

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tusk_core::ContentHash;

pub const MIB: usize = 1 << 20;

pub struct TestServer {
    pub base: String,
    /// The server's service, for what no request reaches (the sweeper).
    pub service: std::sync::Arc<tusk_core::UploadService>,
    pub http: reqwest::Client,
    pub client: tusk_client::Client,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` edits its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut tusk_server::ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = tusk_server::ServeConfig::new(dir.path().join("data"));
        config.listen = "127.0.0.1:0".parse().unwrap();
        adjust(&mut config);
        let state = tusk_server::open(&config).await.expect("open data folder");
        let service = state.service.clone();
        let listener = TcpListener::bind(config.listen).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tusk_server::run(listener, state, async {
            let _ = stopped.await;
        }));
        TestServer {
            client: tusk_client::Client::new(&base),
            base,
            service,
            http: reqwest::Client::new(),
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Finished blobs on disk.
    pub fn blob_count(&self) -> usize {
        count_files(&self.data().join("blobs"))
    }

    /// Part files of uploads in progress on disk.
    pub fn part_count(&self) -> usize {
        count_files(&self.data().join("parts"))
    }

    /// `POST /api/v1/uploads` with a JSON body.
    pub async fn create(&self, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/api/v1/uploads"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    /// Creates an upload for `data` named `name`; returns the upload object.
    pub async fn start_upload(&self, name: &str, data: &[u8]) -> Value {
        let (status, body) = self
            .create(&json!({ "name": name, "size": data.len(), "hash": hash(data) }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["upload"].clone()
    }

    pub async fn put_chunk(&self, id: &str, index: u64, bytes: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(&format!("/api/v1/uploads/{id}/chunks/{index}")))
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn complete(&self, id: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(&format!("/api/v1/uploads/{id}/complete")))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn download(&self, file: &Value) -> Vec<u8> {
        let r = self
            .http
            .get(self.url(file["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.bytes().await.unwrap().to_vec()
    }

    /// Uploads `data` through the whole flow, chunk by chunk.
    pub async fn upload(&self, name: &str, data: &[u8]) -> Value {
        let upload = self.start_upload(name, data).await;
        let (id, cs) = (
            upload["id"].as_str().unwrap(),
            upload["chunk_size"].as_u64().unwrap() as usize,
        );
        for (i, chunk) in data.chunks(cs).enumerate() {
            let (status, body) = self.put_chunk(id, i as u64, chunk.to_vec()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = self.complete(id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["file"].clone()
    }

    /// Every file of the listing.
    pub async fn all_files(&self) -> Vec<Value> {
        let (status, body) = self.get_json("/api/v1/files?limit=1000").await;
        assert_eq!(status, StatusCode::OK);
        body["files"].as_array().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// The `sha256-4m` hash, computed here independently of the server's code.
pub fn hash(data: &[u8]) -> String {
    let mut outer = Sha256::new();
    for block in data.chunks(4 * MIB) {
        outer.update(Sha256::digest(block));
    }
    let h = format!("sha256-4m:{}", hex(&outer.finalize()));
    debug_assert_eq!(h, ContentHash::of_bytes(data).to_string());
    h
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random test content.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::fill(&mut v[..]);
    v
}
