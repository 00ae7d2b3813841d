//! Two `tusk serve` nodes sharing one S3 store (SeaweedFS) and one
//! PostgreSQL catalog, as behind a load balancer: any node takes any
//! request of any upload. The backends are started by `tests/backends/start`
//! and named in `TUSK_TEST_S3_*` and `TUSK_TEST_POSTGRES`; each test gets a
//! fresh database and a fresh key prefix.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use futures::TryStreamExt;
use object_store::ObjectStore;
use serde_json::Value;
use tusk_client::api::{Checked, ChunkCheck, Client, NewUpload};
use tusk_core::ContentHash;

use crate::common;

use common::proxy::{Proxy, Throttle};
use common::{Server, backend_env as env, scale_out_args};

const MIB: usize = 1 << 20;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ len as u64;
    for b in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    v
}

/// Two nodes on one fresh prefix and one fresh database.
struct Cluster {
    _dir: tempfile::TempDir,
    /// Node A, until a test kills it.
    a: Option<Server>,
    b: Server,
    prefix: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let (args, prefix) = scale_out_args().await;
        let dir = tempfile::tempdir().unwrap();
        let a = Self::node(dir.path(), "a", &args);
        let b = Self::node(dir.path(), "b", &args);
        Cluster {
            _dir: dir,
            a: Some(a),
            b,
            prefix,
        }
    }

    fn a(&self) -> &Server {
        self.a.as_ref().expect("node A runs")
    }

    fn node(dir: &Path, name: &str, args: &[String]) -> Server {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_with(&dir.join(name), &args, &[])
    }

    /// Every key under the prefix, relative to it, sorted.
    async fn keys(&self) -> Vec<String> {
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(env("TUSK_TEST_S3_BUCKET"))
            .with_endpoint(env("TUSK_TEST_S3_ENDPOINT"))
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .unwrap();
        let listed: Vec<_> = s3
            .list(Some(&self.prefix.as_str().into()))
            .try_collect()
            .await
            .unwrap();
        let mut keys: Vec<String> = listed
            .into_iter()
            .map(|m| m.location.as_ref()[self.prefix.len() + 1..].to_owned())
            .collect();
        keys.sort();
        keys
    }

    /// The finished blobs in the store.
    async fn blobs(&self) -> Vec<String> {
        let keys = self.keys().await;
        assert!(
            !keys.iter().any(|k| k.starts_with("staging/")),
            "staged objects left: {keys:?}"
        );
        keys.into_iter()
            .filter(|k| k.starts_with("blobs/"))
            .collect()
    }
}

async fn download(base: &str, file_id: &str) -> Vec<u8> {
    let response = reqwest::get(format!("{base}/files/{file_id}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

fn chunk_of(data: &[u8], chunk_size: u64, index: u32) -> Vec<u8> {
    let start = index as usize * chunk_size as usize;
    data[start..(start + chunk_size as usize).min(data.len())].to_vec()
}

async fn check(client: &Client, name: &str, data: &[u8]) -> (String, u64) {
    let checked = client
        .check(&NewUpload {
            name: name.into(),
            size: data.len() as u64,
            hash: ContentHash::of_bytes(data).to_string(),
            ..NewUpload::default()
        })
        .await
        .unwrap();
    match checked {
        Checked::Uploading { upload, .. } => (upload.id, upload.chunk_size),
        Checked::Instant(file) => panic!("instant upload of new content: {file:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunks_alternate_between_nodes_and_any_node_completes_and_serves() {
    let cluster = Cluster::start().await;
    let (a, b) = (Client::new(&cluster.a().base), Client::new(&cluster.b.base));
    let data = random_bytes(5 * 8 * MIB + 12_345, 1);
    let (id, chunk_size) = check(&a, "alternating.bin", &data).await;
    assert_eq!(chunk_size, 8 * MIB as u64, "S3 chunks are at least 8 MiB");
    let count = data.len().div_ceil(chunk_size as usize) as u32;
    for index in 0..count {
        let node = if index % 2 == 0 { &a } else { &b };
        let chunk = chunk_of(&data, chunk_size, index);
        let len = chunk.len() as u64;
        node.put_chunk(&id, index, chunk, len, ChunkCheck::None)
            .await
            .unwrap();
    }
    // The other node sees every chunk.
    let seen = a.upload(&id).await.unwrap();
    assert_eq!(seen.received, (0..count).collect::<Vec<_>>());
    let file = b.complete(&id).await.unwrap();
    assert!(
        download(&cluster.a().base, &file.id).await == data,
        "A serves other bytes"
    );
    // A range of the blob, from B.
    let range = reqwest::Client::new()
        .get(format!("{}/files/{}", cluster.b.base, file.id))
        .header("range", "bytes=8388600-8388700")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert!(range.bytes().await.unwrap()[..] == data[8_388_600..=8_388_700]);
    assert_eq!(cluster.blobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_chunk_sent_to_both_nodes_at_once_is_recorded_once() {
    let cluster = Cluster::start().await;
    let (a, b) = (Client::new(&cluster.a().base), Client::new(&cluster.b.base));
    let data = random_bytes(3 * 8 * MIB, 2);
    let (id, chunk_size) = check(&a, "twice.bin", &data).await;
    for index in 0..3u32 {
        let chunk = chunk_of(&data, chunk_size, index);
        let hash = ContentHash::of_bytes(&chunk);
        let len = chunk.len() as u64;
        if index < 2 {
            // Two good copies at once: both acknowledged, one recorded.
            let (x, y) = tokio::join!(
                a.put_chunk(&id, index, chunk.clone(), len, ChunkCheck::ChunkHash(hash)),
                b.put_chunk(&id, index, chunk, len, ChunkCheck::ChunkHash(hash)),
            );
            x.unwrap();
            y.unwrap();
        } else {
            // A corrupted copy on A beside a good one on B: the corrupted
            // one is refused if it runs first, or read and dropped unwritten
            // if the good one was recorded first; never is it stored.
            let mut bad = chunk.clone();
            bad[12345] ^= 0xff;
            let (x, y) = tokio::join!(
                a.put_chunk(&id, index, bad, len, ChunkCheck::ChunkHash(hash)),
                b.put_chunk(&id, index, chunk, len, ChunkCheck::ChunkHash(hash)),
            );
            if let Err(refused) = x {
                assert_eq!(refused.code(), Some("digest_mismatch"), "{refused}");
            }
            y.unwrap();
        }
    }
    assert_eq!(a.upload(&id).await.unwrap().received, vec![0, 1, 2]);
    let file = a.complete(&id).await.unwrap();
    assert!(download(&cluster.b.base, &file.id).await == data);
    assert_eq!(cluster.blobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_chunk_leaves_the_upload_to_the_other() {
    let mut cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(12 * 8 * MIB + 777, 3);
    let path = dir.path().join("failover.bin");
    std::fs::write(&path, &data).unwrap();
    // The balancer sends connections to A and B in turn, at 32 MiB/s.
    let balancer = Proxy::balance(
        &[&cluster.a().base, &cluster.b.base],
        Throttle::Up(32 * MIB as u64),
    )
    .await;
    let mut upload = tokio::process::Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["upload", "--json", "--no-cache", "--server", &balancer.base])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Mid-upload: chunks are in flight on both nodes.
    balancer.up.reached(40 * MIB as u64).await;
    cluster.a.take().unwrap().kill9();
    let out = tokio::time::timeout(Duration::from_secs(300), async {
        let stdout = upload.stdout.take().unwrap();
        let stderr = upload.stderr.take().unwrap();
        let (o, e) = tokio::join!(read_all(stdout), read_all(stderr));
        (upload.wait().await.unwrap(), o, e)
    })
    .await
    .expect("the upload ends");
    let (status, stdout, stderr) = out;
    assert!(status.success(), "upload failed: {stderr}");
    assert!(stderr.contains("trying again"), "no retry seen: {stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let id = line["id"].as_str().unwrap();
    assert!(
        download(&cluster.b.base, id).await == data,
        "the file differs"
    );
    assert_eq!(cluster.blobs().await.len(), 1);
}

async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = String::new();
    from.read_to_string(&mut s).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tus_upload_whose_patches_alternate_between_nodes_completes() {
    let cluster = Cluster::start().await;
    let http = reqwest::Client::new();
    let data = random_bytes(2 * 8 * MIB + 3 * MIB + 5, 4);
    let name = base64::engine::general_purpose::STANDARD.encode("tus.bin");
    let created = http
        .post(format!("{}/tus/", cluster.a().base))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len())
        .header("upload-metadata", format!("filename {name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let path = location
        .strip_prefix("http://")
        .map(|l| &l[l.find('/').unwrap()..])
        .unwrap_or(&location)
        .to_owned();
    // PATCHes of 3 MiB (smaller than a part), alternating nodes; before
    // each, a HEAD on the other node agrees on the offset.
    let mut offset = 0;
    for (turn, piece) in data.chunks(3 * MIB).enumerate() {
        let (this, other) = if turn % 2 == 0 {
            (cluster.a(), &cluster.b)
        } else {
            (&cluster.b, cluster.a())
        };
        let head = http
            .head(other.url(&path))
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.headers()["upload-offset"].to_str().unwrap(),
            offset.to_string()
        );
        let patched = http
            .patch(this.url(&path))
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset)
            .header("content-type", "application/offset+octet-stream")
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 204, "PATCH at {offset}");
        offset += piece.len();
        assert_eq!(
            patched.headers()["upload-offset"].to_str().unwrap(),
            offset.to_string()
        );
    }
    let done = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(cluster.b.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        303,
        "the completed upload points at its file"
    );
    let file = done.headers()["location"].to_str().unwrap().to_owned();
    let got = http.get(cluster.a().url(&file)).send().await.unwrap();
    assert!(
        got.bytes().await.unwrap()[..] == data[..],
        "the file differs"
    );
    assert_eq!(cluster.blobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_content_through_both_nodes_at_once_is_one_blob() {
    let cluster = Cluster::start().await;
    let data = random_bytes(4 * 8 * MIB + 99, 5);
    let hash = ContentHash::of_bytes(&data);
    // Two clients, one per node, each checks first, then both send all
    // their chunks, then both complete: two uploads of one content.
    let (a, b) = (Client::new(&cluster.a().base), Client::new(&cluster.b.base));
    let ((ida, cs), (idb, _)) =
        tokio::join!(check(&a, "one.bin", &data), check(&b, "two.bin", &data));
    assert_ne!(ida, idb);
    let send = |client: &Client, id: &str| {
        let (client, id, data) = (client.clone(), id.to_owned(), data.clone());
        async move {
            for index in 0..data.len().div_ceil(cs as usize) as u32 {
                let chunk = chunk_of(&data, cs, index);
                let len = chunk.len() as u64;
                client
                    .put_chunk(&id, index, chunk, len, ChunkCheck::None)
                    .await
                    .unwrap();
            }
        }
    };
    tokio::join!(send(&a, &ida), send(&b, &idb));
    let (fa, fb) = tokio::join!(a.complete(&ida), b.complete(&idb));
    let (fa, fb) = (fa.unwrap(), fb.unwrap());
    assert_ne!(fa.id, fb.id, "two files");
    assert_eq!(fa.hash, hash.to_string());
    assert_eq!(fb.hash, hash.to_string());
    let blobs = cluster.blobs().await;
    assert_eq!(blobs.len(), 1, "one blob for one content: {blobs:?}");
    assert!(download(&cluster.a().base, &fb.id).await == data);
    assert!(download(&cluster.b.base, &fa.id).await == data);
}
