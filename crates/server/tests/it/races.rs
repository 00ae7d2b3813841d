//! The service under a slow store and racing requests, in paused time: a
//! proof is answered at the same moment whether the content exists or not
//! however long reading it takes; a claim refuted once costs no second
//! pass; a proof racing a completion makes one file; a chunk whose upload
//! the sweeper ended under it is told the upload expired.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use md5::Digest;
use tusk_catalog::SqliteCatalog;
use tusk_core::model::{
    BlobId, ChunkRecord, ChunkRef, Claims, EndReason, Owner, Staging, Timestamp, Upload,
};
use tusk_core::service::{ChunkPut, CreateOutcome, NewUpload, ProofOutcome, proof_time};
use tusk_core::store::{ByteStream, ChunkWriter, StoreResult};
use tusk_core::{BlobStore, ContentHash, Error, Limits, UploadService};
use tusk_store::FsStore;

const MIB: usize = 1 << 20;

/// A store that takes `delay` (in tokio's clock) before each read, and
/// counts the bytes asked for.
struct SlowReads {
    inner: FsStore,
    delay: Duration,
    read: AtomicU64,
}

#[async_trait]
impl BlobStore for SlowReads {
    async fn begin(&self, blob: &BlobId, size: Option<u64>) -> StoreResult<Staging> {
        self.inner.begin(blob, size).await
    }
    async fn open_chunk(
        &self,
        staging: &Staging,
        chunk: ChunkRef,
        start: u64,
    ) -> StoreResult<Box<dyn ChunkWriter>> {
        self.inner.open_chunk(staging, chunk, start).await
    }
    async fn commit(
        &self,
        staging: &Staging,
        size: u64,
        chunks: &[ChunkRecord],
    ) -> StoreResult<()> {
        self.inner.commit(staging, size, chunks).await
    }
    async fn abort(&self, staging: &Staging) -> StoreResult<()> {
        self.inner.abort(staging).await
    }
    async fn staged_before(&self, before: Timestamp) -> StoreResult<Vec<Staging>> {
        self.inner.staged_before(before).await
    }
    fn blobs_before(&self, before: Timestamp) -> tusk_core::store::BlobIds {
        self.inner.blobs_before(before)
    }
    async fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreResult<ByteStream> {
        tokio::time::sleep(self.delay).await;
        self.read
            .fetch_add(range.end - range.start, Ordering::Relaxed);
        self.inner.read(blob, range).await
    }
    async fn delete(&self, blob: &BlobId) -> StoreResult<()> {
        self.inner.delete(blob).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

struct Setup {
    svc: Arc<UploadService>,
    store: Arc<SlowReads>,
    _dir: tempfile::TempDir,
}

async fn setup(delay: Duration, limits: Limits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SlowReads {
        inner: FsStore::open(dir.path().join("data")).unwrap(),
        delay,
        read: AtomicU64::new(0),
    });
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    let svc = Arc::new(UploadService::new(store.clone(), Arc::new(catalog), limits));
    // Tokens exist: owners are apart, proofs are needed across them.
    svc.create_token("ann", None, false).await.unwrap();
    Setup {
        svc,
        store,
        _dir: dir,
    }
}

fn owner(name: &str) -> Owner {
    Owner(name.to_owned())
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8 ^ seed)
        .collect()
}

fn body(bytes: &[u8]) -> ByteStream {
    let bytes = Bytes::copy_from_slice(bytes);
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
}

/// Checks `bytes` for `who`: the upload, new or resumed.
async fn check(svc: &Arc<UploadService>, who: &Owner, bytes: &[u8], claims: Claims) -> Upload {
    let req = NewUpload {
        name: "f.bin".into(),
        size: bytes.len() as u64,
        claims: Claims {
            hash: Some(ContentHash::of_bytes(bytes)),
            ..claims
        },
        mime: None,
        chunk_size: None,
        file_id: None,
    };
    match svc.create(who, req).await.unwrap() {
        CreateOutcome::Created(u) | CreateOutcome::Resumed(u) => u,
        CreateOutcome::Instant(_) => panic!("unexpected instant upload"),
    }
}

async fn send_all(svc: &Arc<UploadService>, who: &Owner, up: &Upload, bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(up.chunk_size as usize).enumerate() {
        let put = ChunkPut {
            index: i as u64,
            declared_len: Some(chunk.len() as u64),
            checks: Vec::new(),
            hash: None,
            body: body(chunk),
        };
        svc.put_chunk(who, &up.id, put).await.unwrap();
    }
}

/// Stores `bytes` as a file of `who`.
async fn store(svc: &Arc<UploadService>, who: &Owner, bytes: &[u8]) {
    let up = check(svc, who, bytes, Claims::default()).await;
    send_all(svc, who, &up, bytes).await;
    svc.complete(who, &up.id).await.unwrap();
}

#[tokio::test]
async fn a_proof_is_answered_at_the_same_moment_whether_the_content_exists() {
    // Reading a block takes a second: far longer than a proof may take.
    let s = setup(Duration::from_secs(1), Limits::default()).await;
    // Paused time from here on (the catalog opened on the real clock).
    tokio::time::pause();
    let stored = data(12 * MIB, 1);
    store(&s.svc, &owner("ann"), &stored).await;
    let eve = owner("eve");
    let mut took = Vec::new();
    for bytes in [stored.clone(), data(12 * MIB, 2)] {
        let up = check(&s.svc, &eve, &bytes, Claims::default()).await;
        let blocks = s.svc.challenge(&up).await.unwrap().blocks.len();
        let wrong = vec![[0u8; 32]; blocks];
        let started = tokio::time::Instant::now();
        let outcome = s.svc.prove(&eve, &up.id, &wrong, None).await.unwrap();
        assert!(matches!(outcome, ProofOutcome::Upload(_)));
        took.push((started.elapsed(), proof_time(blocks)));
    }
    assert_eq!(took[0], took[1], "existing, then missing content");
    // The paused clock's timers fire on whole milliseconds.
    let (elapsed, due) = took[0];
    assert!(
        elapsed >= due && elapsed - due <= Duration::from_millis(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_claim_refuted_once_is_not_checked_by_reading_again() {
    let s = setup(Duration::ZERO, Limits::default()).await;
    let ann = owner("ann");
    let bytes = data(6 * MIB + 7, 3);
    store(&s.svc, &ann, &bytes).await;
    let wrong = Claims {
        md5: Some([9; 16]),
        ..Claims::default()
    };
    for round in 0..3 {
        let req = NewUpload {
            name: format!("copy-{round}.bin"),
            size: bytes.len() as u64,
            claims: Claims {
                hash: Some(ContentHash::of_bytes(&bytes)),
                ..wrong.clone()
            },
            mime: None,
            chunk_size: None,
            file_id: None,
        };
        let err = s.svc.create(&ann, req).await.unwrap_err();
        assert!(matches!(err, Error::HashMismatch("md5")), "{err:?}");
        assert_eq!(
            s.store.read.load(Ordering::Relaxed),
            bytes.len() as u64,
            "round {round}: the content is read once in all"
        );
    }
}

#[tokio::test]
async fn a_proof_racing_a_completion_makes_one_file() {
    // Each block read takes 100 ms: the completion lands while the proof
    // is reading.
    let s = setup(Duration::from_millis(100), Limits::default()).await;
    tokio::time::pause();
    let stored = data(12 * MIB, 4);
    store(&s.svc, &owner("ann"), &stored).await;
    let bob = owner("bob");
    let up = check(&s.svc, &bob, &stored, Claims::default()).await;
    send_all(&s.svc, &bob, &up, &stored).await;
    let challenge = s.svc.challenge(&up).await.unwrap();
    let right: Vec<[u8; 32]> = challenge
        .blocks
        .iter()
        .map(|&i| {
            let start = i as usize * 4 * MIB;
            let block = &stored[start..(start + 4 * MIB).min(stored.len())];
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut h, challenge.nonce);
            sha2::Digest::update(&mut h, block);
            sha2::Digest::finalize(h).into()
        })
        .collect();
    let (proved, completed) = tokio::join!(s.svc.prove(&bob, &up.id, &right, None), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.svc.complete(&bob, &up.id).await
    });
    completed.unwrap();
    assert!(matches!(proved.unwrap(), ProofOutcome::Upload(_)));
    let files = s
        .svc
        .list_files(&tusk_core::model::FileQuery {
            owner: bob.clone(),
            search: None,
            cursor: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(files.files.len(), 1, "one upload, one file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_whose_upload_expired_under_it_is_told_so() {
    let s = setup(Duration::ZERO, Limits::default()).await;
    let ann = owner("ann");
    let bytes = data(8 * MIB, 5);
    let up = check(&s.svc, &ann, &bytes, Claims::default()).await;
    // The chunk's body arrives in two halves, the second held back.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let stream: ByteStream = Box::pin(tokio_stream_of(rx));
    tx.send(Ok(Bytes::copy_from_slice(&bytes[..4 * MIB])))
        .await
        .unwrap();
    let put = tokio::spawn({
        let (svc, ann, id) = (s.svc.clone(), ann.clone(), up.id.clone());
        async move {
            let put = ChunkPut {
                index: 0,
                declared_len: Some(8 * MIB as u64),
                checks: Vec::new(),
                hash: None,
                body: stream,
            };
            svc.put_chunk(&ann, &id, put).await
        }
    });
    // Once the write is under way (the first half taken from the channel),
    // the upload expires and is swept.
    drop(tx.reserve().await.unwrap());
    let later = Timestamp::now().plus(Duration::from_secs(3 * 24 * 3600));
    assert_eq!(s.svc.sweep_expired(later).await.unwrap(), 1);
    tx.send(Ok(Bytes::copy_from_slice(&bytes[4 * MIB..])))
        .await
        .unwrap();
    drop(tx);
    let err = put.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::UploadGone(EndReason::Expired)),
        "{err:?}"
    );
}

/// A stream of what a channel receives.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[tokio::test]
async fn an_idle_upload_is_resumed_under_another_name_with_the_claims_of_both() {
    let limits = Limits {
        rename_after: Duration::ZERO,
        ..Limits::default()
    };
    let s = setup(Duration::ZERO, limits).await;
    let ann = owner("ann");
    let bytes = data(9 * MIB, 6);
    let md5: [u8; 16] = md5::Md5::digest(&bytes).into();
    let first = check(&s.svc, &ann, &bytes, Claims::default()).await;
    let req = NewUpload {
        name: "renamed.bin".into(),
        size: bytes.len() as u64,
        claims: Claims {
            hash: Some(ContentHash::of_bytes(&bytes)),
            md5: Some(md5),
            sha256: None,
        },
        mime: None,
        chunk_size: None,
        file_id: None,
    };
    let CreateOutcome::Resumed(again) = s.svc.create(&ann, req).await.unwrap() else {
        panic!("not resumed");
    };
    assert_eq!(again.id, first.id);
    assert_eq!(
        (again.name.as_str(), again.claims.md5),
        ("renamed.bin", Some(md5))
    );
    send_all(&s.svc, &ann, &again, &bytes).await;
    let file = s.svc.complete(&ann, &again.id).await.unwrap();
    assert_eq!((file.name.as_str(), file.md5), ("renamed.bin", Some(md5)));
}
