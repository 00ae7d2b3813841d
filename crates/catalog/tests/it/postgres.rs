//! The `Catalog` conformance suite against PostgreSQL, and what only a
//! catalog shared by several nodes must get right: two `PostgresCatalog`
//! values on one database stand in for two nodes racing each other.
//!
//! Needs `TUSK_TEST_POSTGRES`: the URL of a throwaway cluster in which
//! every test creates a database of its own, dropped when it ends
//! (`scripts/test` starts such a cluster; so does `tests/backends/start
//! DIR`, writing `DIR/env`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::oneshot;
use tusk_catalog::PostgresCatalog;
use tusk_core::Catalog;
use tusk_core::catalog::{CatalogError, NewBlob, NewFiles};
use tusk_core::hash::ContentHash;
use tusk_core::model::{Blob, BlobId, FileId, NewFile, Owner, Timestamp, Upload, UploadMode};

/// Rounds of each race: enough for both orders of arrival to occur.
const ROUNDS: usize = 20;

fn admin_url() -> String {
    std::env::var("TUSK_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "TUSK_TEST_POSTGRES is not set: run scripts/test, or tests/backends/start DIR \
             and source DIR/env"
        )
    })
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_at = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_at..].find('/') {
        Some(slash) => &base[..authority_at + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// An empty database of its own in the test cluster, dropped with this.
struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let admin = admin_url();
        let name = format!("tusk_test_{}", BlobId::random());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to TUSK_TEST_POSTGRES");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        conn.close().await.expect("close the admin connection");
        let url = with_database(&admin, &name);
        TestDatabase { name, url }
    }
}

impl Drop for TestDatabase {
    /// Drops the database (ending any connection still open to it), so
    /// that runs do not pile databases up. Drop cannot wait, so a thread
    /// with a runtime of its own does the work while this waits for it.
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(async {
                    let mut conn = PgConnection::connect(&admin_url()).await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await?;
                    conn.close().await
                })
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test database: {e}");
        }
    }
}

async fn fresh_catalog() -> (Arc<dyn Catalog>, TestDatabase) {
    let db = TestDatabase::create().await;
    let catalog = PostgresCatalog::connect(&db.url)
        .await
        .expect("connect the catalog");
    (Arc::new(catalog), db)
}

tusk_core::catalog_conformance!(fresh_catalog);

/// Two nodes on one fresh database, started at the same time (both
/// migrate it at once).
async fn two_nodes() -> (Arc<PostgresCatalog>, Arc<PostgresCatalog>, TestDatabase) {
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(
        PostgresCatalog::connect(&db.url),
        PostgresCatalog::connect(&db.url)
    );
    (
        Arc::new(a.expect("connect node a")),
        Arc::new(b.expect("connect node b")),
        db,
    )
}

fn ann() -> Owner {
    Owner("ann".to_owned())
}

fn upload(mode: UploadMode) -> Upload {
    let mut up = tusk_core::conformance::catalog::upload(&ann(), "a.bin", Some(10), None);
    up.mode = mode;
    up
}

fn new_file(name: &str) -> NewFile {
    tusk_core::conformance::catalog::new_file(&ann(), name, 2_000)
}

fn new_blob(id: BlobId, hash: ContentHash) -> NewBlob {
    NewBlob {
        blob: Blob {
            id,
            hash,
            size: 10,
            md5: None,
            sha256: None,
        },
        created_at: Timestamp(3_000),
    }
}

/// A content hash no other test or round uses.
fn unique_hash() -> ContentHash {
    ContentHash::of_bytes(BlobId::random().as_str().as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_name_the_server_but_not_the_password() {
    let err = match PostgresCatalog::connect("postgres://tusk:s3cret@127.0.0.1:1/tusk").await {
        Ok(_) => panic!("connected to port 1"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers() {
    let (a, _b, _db) = two_nodes().await;
    a.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_one_node_is_free_for_the_other_once_dropped() {
    let (a, b, _db) = two_nodes().await;
    for _ in 0..ROUNDS {
        let held = a.try_lock("k").await.unwrap().expect("a free key");
        assert!(b.try_lock("k").await.unwrap().is_none(), "held by node a");
        assert!(b.try_lock("other").await.unwrap().is_some(), "another key");
        drop(held);
        let taken = b.try_lock("k").await.unwrap();
        assert!(taken.is_some(), "free right after the guard dropped");
        assert!(a.try_lock("k").await.unwrap().is_none(), "held by node b");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_for_the_other_node() {
    let (a, b, _db) = two_nodes().await;
    let held = a.lock("k").await.unwrap();
    let (got_tx, got_rx) = oneshot::channel();
    let waiter = tokio::spawn(async move {
        let guard = b.lock("k").await.unwrap();
        let _ = got_tx.send(guard);
    });
    let mut got_rx = got_rx;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut got_rx)
            .await
            .is_err(),
        "node b took a key node a holds"
    );
    drop(held);
    let guard = tokio::time::timeout(Duration::from_secs(10), got_rx)
        .await
        .expect("node b still waits after node a let go")
        .expect("the waiting task failed");
    waiter.await.unwrap();
    assert!(a.try_lock("k").await.unwrap().is_none(), "held by node b");
    drop(guard);
    assert!(a.try_lock("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_completions_of_one_content_keep_one_blob() {
    let (a, b, _db) = two_nodes().await;
    for round in 0..ROUNDS {
        let hash = unique_hash();
        let (ua, ub) = (upload(UploadMode::Chunks), upload(UploadMode::Chunks));
        a.insert_upload(&ua).await.unwrap();
        b.insert_upload(&ub).await.unwrap();
        let (ba, bb) = (
            new_blob(ua.staging.blob.clone(), hash),
            new_blob(ub.staging.blob.clone(), hash),
        );
        let (fa, fb) = (new_file("a"), new_file("b"));
        let (ra, rb) = tokio::join!(
            a.complete_upload(&ua.id, &ba, &fa),
            b.complete_upload(&ub.id, &bb, &fb),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.kept_own_blob != rb.kept_own_blob, "round {round}");
        assert_eq!(ra.file.blob.id, rb.file.blob.id, "round {round}");
        let kept = ra.file.blob.id.clone();
        let winner = if ra.kept_own_blob { &ba } else { &bb };
        assert_eq!(kept, winner.blob.id);
        assert_eq!(
            a.find_blob(&hash).await.unwrap().map(|b| b.id),
            Some(kept.clone())
        );
        // Two references: the blob goes with the second file only.
        let first = b.delete_file(&ann(), &fa.id).await.unwrap().unwrap();
        assert_eq!(first.freed_blob, None, "round {round}");
        let last = a.delete_file(&ann(), &fb.id).await.unwrap().unwrap();
        assert_eq!(last.freed_blob, Some(kept), "round {round}");
        assert!(b.find_blob(&hash).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_batches_count_every_reference() {
    let (a, b, _db) = two_nodes().await;
    for round in 0..ROUNDS {
        let h: Vec<ContentHash> = (0..4).map(|_| unique_hash()).collect();
        let blob = |i: usize| new_blob(BlobId::random(), h[i]);
        // Overlapping hashes, given in opposite orders.
        let batch_a = NewFiles {
            blobs: vec![blob(0), blob(1), blob(2)],
            files: [0, 1, 2, 0]
                .into_iter()
                .map(|i| (new_file("a"), h[i]))
                .collect(),
        };
        let batch_b = NewFiles {
            blobs: vec![blob(3), blob(2), blob(1)],
            files: [3, 2, 1, 1]
                .into_iter()
                .map(|i| (new_file("b"), h[i]))
                .collect(),
        };
        let (da, db) = tokio::join!(a.insert_files(&batch_a), b.insert_files(&batch_b));
        let (da, db) = (da.unwrap(), db.unwrap());
        // One blob per hash, every file on it, every other copy redundant.
        let mut stored = HashMap::new();
        for hash in &h {
            let blob = a.find_blob(hash).await.unwrap().expect("stored");
            stored.insert(*hash, blob.id);
        }
        let redundant: HashSet<BlobId> =
            da.redundant.iter().chain(&db.redundant).cloned().collect();
        assert_eq!(redundant.len(), da.redundant.len() + db.redundant.len());
        for new in batch_a.blobs.iter().chain(&batch_b.blobs) {
            let kept = stored[&new.blob.hash] == new.blob.id;
            assert_eq!(kept, !redundant.contains(&new.blob.id), "round {round}");
        }
        assert_eq!(
            redundant.len(),
            2,
            "round {round}: hashes 1 and 2 came twice"
        );
        let mut files = Vec::new();
        for (record, (_, hash)) in da
            .files
            .iter()
            .zip(&batch_a.files)
            .chain(db.files.iter().zip(&batch_b.files))
        {
            assert_eq!(record.blob.id, stored[hash], "round {round}");
            files.push((record.id.clone(), *hash));
        }
        // Delete every file, half from each node at once: each blob is
        // freed exactly once, by its last file (a count too low would free
        // it early and fail a later delete; too high would never free it).
        let (odd, even): (Vec<_>, Vec<_>) =
            files.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
        let (fa, fb) = tokio::join!(delete_all(&a, odd), delete_all(&b, even));
        let mut freed: Vec<(BlobId, ContentHash)> = fa.into_iter().chain(fb).collect();
        freed.sort_by(|x, y| x.0.cmp(&y.0));
        let mut want: Vec<(BlobId, ContentHash)> =
            stored.into_iter().map(|(h, id)| (id, h)).collect();
        want.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(freed, want, "round {round}: every blob freed once");
        for hash in &h {
            assert!(a.find_blob(hash).await.unwrap().is_none());
        }
    }
}

/// Deletes `files` one by one through `node`; returns the blobs freed, with
/// their hashes.
async fn delete_all(
    node: &PostgresCatalog,
    files: Vec<(usize, (FileId, ContentHash))>,
) -> Vec<(BlobId, ContentHash)> {
    let mut freed = Vec::new();
    for (_, (id, hash)) in files {
        let done = node
            .delete_file(&ann(), &id)
            .await
            .unwrap()
            .expect("a file");
        if let Some(blob) = done.freed_blob {
            freed.push((blob, hash));
        }
    }
    freed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_upload_racing_the_last_delete_never_loses_its_blob() {
    let (a, b, _db) = two_nodes().await;
    for round in 0..ROUNDS {
        let up = upload(UploadMode::Chunks);
        a.insert_upload(&up).await.unwrap();
        let only = a
            .complete_upload(
                &up.id,
                &new_blob(up.staging.blob.clone(), unique_hash()),
                &new_file("a"),
            )
            .await
            .unwrap()
            .file;
        let copy = new_file("copy");
        let owner = ann();
        let (deleted, inserted) = tokio::join!(
            a.delete_file(&owner, &only.id),
            b.insert_file(&copy, &only.blob.id),
        );
        let freed = deleted.unwrap().unwrap().freed_blob;
        match inserted {
            Ok(record) => {
                assert_eq!(freed, None, "round {round}: freed a blob still referenced");
                let last = b.delete_file(&ann(), &record.id).await.unwrap().unwrap();
                assert_eq!(last.freed_blob, Some(only.blob.id.clone()));
            }
            Err(CatalogError::NotFound) => {
                assert_eq!(freed, Some(only.blob.id.clone()), "round {round}");
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
        assert!(a.find_blob(&only.blob.hash).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_move_the_offset_once() {
    let (a, b, _db) = two_nodes().await;
    let mut up = upload(UploadMode::Append);
    up.size = None;
    a.insert_upload(&up).await.unwrap();
    let mut offset = 0;
    for round in 0..ROUNDS {
        let (to_a, to_b) = (offset + 100, offset + 200);
        let (ra, rb) = tokio::join!(
            a.record_append(&up.id, offset, to_a, &[], Some(&[1]), Timestamp(5)),
            b.record_append(&up.id, offset, to_b, &[], Some(&[2]), Timestamp(5)),
        );
        offset = match (ra, rb) {
            (Ok(()), Err(CatalogError::OffsetConflict)) => to_a,
            (Err(CatalogError::OffsetConflict), Ok(())) => to_b,
            other => panic!("round {round}: {other:?}"),
        };
        let got = b.get_upload(&up.id).await.unwrap().unwrap();
        assert_eq!(got.offset, offset, "round {round}");
    }
}
