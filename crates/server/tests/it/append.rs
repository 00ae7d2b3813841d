//! The append write path of the core (what tus PATCH requests use), on the
//! real fs store and SQLite catalog: pieces of any length across block and
//! chunk boundaries, across restarts, with deferred lengths, checksums,
//! interruptions and overruns.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tusk_catalog::SqliteCatalog;
use tusk_core::checksum::{Algorithm, Checksum};
use tusk_core::model::{Concat, EndReason, Owner, UploadId};
use tusk_core::service::{AppendOutcome, Appended, Checks, NewAppendUpload};
use tusk_core::store::ByteStream;
use tusk_core::{ContentHash, Error, Limits, UploadService};
use tusk_store::FsStore;

const MIB: usize = 1 << 20;

/// A service over the data folder `dir`; opening it again is a restart.
async fn service(dir: &Path) -> Arc<UploadService> {
    service_with(dir, Limits::default()).await
}

async fn service_with(dir: &Path, limits: Limits) -> Arc<UploadService> {
    let store = FsStore::open(dir.join("data")).unwrap();
    let catalog = SqliteCatalog::open(&dir.join("catalog.db")).await.unwrap();
    Arc::new(UploadService::new(
        Arc::new(store),
        Arc::new(catalog),
        limits,
    ))
}

fn body(data: &[u8]) -> ByteStream {
    let frames: Vec<std::io::Result<Bytes>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(frames))
}

/// A body that breaks off with an error after sending `data`.
fn broken(data: &[u8]) -> ByteStream {
    let mut frames: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::copy_from_slice(data))];
    frames.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "client went away",
    )));
    Box::pin(futures::stream::iter(frames))
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 11)) as u8)
        .collect()
}

async fn append(svc: &Arc<UploadService>, id: &UploadId, at: u64, piece: &[u8]) -> Appended {
    match svc
        .append(&Owner::local(), id, at, Checks::None, body(piece))
        .await
        .unwrap()
    {
        AppendOutcome::Done(a) => a,
        AppendOutcome::Interrupted { error, .. } => panic!("interrupted: {error}"),
    }
}

async fn read_back(svc: &UploadService, file: &tusk_core::model::FileRecord) -> Vec<u8> {
    let d = svc.read_file(file.clone(), None).await.unwrap();
    tusk_core::conformance::collect(d.body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_pieces_across_restarts_complete_to_the_same_hash() {
    let dir = tempfile::tempdir().unwrap();
    let content = data(19 * MIB + 5);
    let owner = Owner::local();
    let id = {
        let svc = service(dir.path()).await;
        let req = NewAppendUpload {
            name: "tus.bin".into(),
            mime: None,
            size: Some(content.len() as u64),
            meta: None,
            concat: Concat::None,
        };
        svc.create_append(&owner, req).await.unwrap().id
    };
    // Pieces that end inside blocks, on a block edge, across a chunk edge.
    let cuts = [
        0,
        1,
        3 * MIB + 17,
        4 * MIB,
        8 * MIB + 1,
        17 * MIB - 3,
        content.len(),
    ];
    for w in cuts.windows(2) {
        let svc = service(dir.path()).await; // a restart between pieces
        let a = append(&svc, &id, w[0] as u64, &content[w[0]..w[1]]).await;
        assert_eq!(a.upload.offset, w[1] as u64);
        assert_eq!(a.full, w[1] == content.len());
        let whole_chunks = (w[1] / (8 * MIB)) as u32;
        let expect: Vec<u32> = (0..whole_chunks)
            .chain((w[1] == content.len()).then_some(2))
            .collect();
        assert_eq!(a.upload.received, expect, "after {} bytes", w[1]);
    }
    let svc = service(dir.path()).await;
    let err = svc
        .append(&owner, &id, 5, Checks::None, body(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongMode | Error::OffsetMismatch { .. }),
        "{err:?}"
    );
    let file = svc.complete(&owner, &id).await.unwrap();
    assert_eq!(file.blob.hash, ContentHash::of_bytes(&content));
    assert!(read_back(&svc, &file).await == content);
}

#[tokio::test]
async fn offsets_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let up = svc
        .create_append(
            &owner,
            NewAppendUpload {
                name: "o".into(),
                mime: None,
                size: Some(100),
                meta: None,
                concat: Concat::None,
            },
        )
        .await
        .unwrap();
    append(&svc, &up.id, 0, &[1; 10]).await;
    for wrong in [0, 9, 11, 1000] {
        let err = svc
            .append(&owner, &up.id, wrong, Checks::None, body(&[2; 5]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::OffsetMismatch { current: 10, .. }),
            "{err:?}"
        );
    }
    assert_eq!(svc.get_upload(&owner, &up.id).await.unwrap().offset, 10);
    // Past the length: refused whole, nothing moves.
    let err = svc
        .append(&owner, &up.id, 10, Checks::None, body(&[3; 91]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PastEnd { size: 100 }), "{err:?}");
    assert_eq!(svc.get_upload(&owner, &up.id).await.unwrap().offset, 10);
    let a = append(&svc, &up.id, 10, &[3; 90]).await;
    assert!(a.full);
}

#[tokio::test]
async fn deferred_length() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let content = data(9 * MIB + 333);
    for declare_at in [content.len(), 5 * MIB] {
        let up = svc
            .create_append(
                &owner,
                NewAppendUpload {
                    name: "d".into(),
                    mime: None,
                    size: None,
                    meta: None,
                    concat: Concat::None,
                },
            )
            .await
            .unwrap();
        assert_eq!(up.size, None);
        let a = append(&svc, &up.id, 0, &content[..declare_at]).await;
        assert!(!a.full, "no length, never full");
        assert!(matches!(
            svc.complete(&owner, &up.id).await.unwrap_err(),
            Error::LengthUnknown
        ));
        let a = svc
            .declare_length(&owner, &up.id, content.len() as u64)
            .await
            .unwrap();
        assert_eq!(a.full, declare_at == content.len());
        if !a.full {
            let err = svc.declare_length(&owner, &up.id, 1).await.unwrap_err();
            assert!(matches!(err, Error::LengthAlreadySet(_)), "{err:?}");
            append(&svc, &up.id, declare_at as u64, &content[declare_at..]).await;
        }
        let file = svc.complete(&owner, &up.id).await.unwrap();
        assert_eq!(file.blob.hash, ContentHash::of_bytes(&content));
        assert!(read_back(&svc, &file).await == content);
    }
}

#[tokio::test]
async fn checksums_make_an_append_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let content = data(5 * MIB);
    let up = svc
        .create_append(
            &owner,
            NewAppendUpload {
                name: "c".into(),
                mime: None,
                size: Some(content.len() as u64),
                meta: None,
                concat: Concat::None,
            },
        )
        .await
        .unwrap();
    let sha256 = |b: &[u8]| {
        use sha2::Digest as _;
        Checksum::new(Algorithm::Sha256, sha2::Sha256::digest(b).to_vec()).unwrap()
    };
    let piece = &content[..3 * MIB];
    let err = svc
        .append(
            &owner,
            &up.id,
            0,
            Checks::Given(vec![sha256(b"other")]),
            body(piece),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch(_)), "{err:?}");
    assert_eq!(svc.get_upload(&owner, &up.id).await.unwrap().offset, 0);
    // Broken off: with a checksum nothing counts…
    match svc
        .append(
            &owner,
            &up.id,
            0,
            Checks::Given(vec![sha256(piece)]),
            broken(&piece[..MIB]),
        )
        .await
        .unwrap()
    {
        AppendOutcome::Interrupted { appended, .. } => assert_eq!(appended.upload.offset, 0),
        AppendOutcome::Done(_) => panic!("a broken body cannot be done"),
    }
    // …without one, every byte that arrived does.
    match svc
        .append(&owner, &up.id, 0, Checks::None, broken(&piece[..MIB + 7]))
        .await
        .unwrap()
    {
        AppendOutcome::Interrupted { appended, error } => {
            assert_eq!(appended.upload.offset, MIB as u64 + 7);
            assert!(matches!(error, Error::Body(_)), "{error:?}");
        }
        AppendOutcome::Done(_) => panic!("a broken body cannot be done"),
    }
    let rest = &content[MIB + 7..];
    let a = match svc
        .append(
            &owner,
            &up.id,
            MIB as u64 + 7,
            Checks::Given(vec![sha256(rest)]),
            body(rest),
        )
        .await
        .unwrap()
    {
        AppendOutcome::Done(a) => a,
        AppendOutcome::Interrupted { error, .. } => panic!("{error}"),
    };
    assert!(a.full);
    let file = svc.complete(&owner, &up.id).await.unwrap();
    assert!(read_back(&svc, &file).await == content);
}

#[tokio::test]
async fn a_length_declared_before_a_crash_is_sealed_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let owner = Owner::local();
    let content = data(3 * MIB + 3);
    let id = {
        let svc = service(dir.path()).await;
        let up = svc
            .create_append(
                &owner,
                NewAppendUpload {
                    name: "r".into(),
                    mime: None,
                    size: None,
                    meta: None,
                    concat: Concat::None,
                },
            )
            .await
            .unwrap();
        append(&svc, &up.id, 0, &content).await;
        up.id
    };
    // What a crash right after the length was stored leaves behind.
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    tusk_core::Catalog::set_upload_size(&catalog, &id, content.len() as u64)
        .await
        .unwrap();
    drop(catalog);

    let svc = service(dir.path()).await;
    assert!(matches!(
        svc.complete(&owner, &id).await.unwrap_err(),
        Error::MissingChunks(_)
    ));
    let a = svc
        .declare_length(&owner, &id, content.len() as u64)
        .await
        .unwrap();
    assert!(a.full, "the retry seals the last chunk");
    let file = svc.complete(&owner, &id).await.unwrap();
    assert!(read_back(&svc, &file).await == content);
}

fn new_append(size: Option<u64>) -> NewAppendUpload {
    NewAppendUpload {
        name: "a.bin".into(),
        mime: None,
        size,
        meta: None,
        concat: Concat::None,
    }
}

#[tokio::test]
async fn checksums_may_follow_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let up = svc
        .create_append(&owner, new_append(Some(10)))
        .await
        .unwrap();
    let md5 = |b: &[u8]| {
        use md5::Digest as _;
        Checksum::new(Algorithm::Md5, md5::Md5::digest(b).to_vec()).unwrap()
    };
    let trailing = |expected: tusk_core::Result<Vec<Checksum>>| Checks::Trailing {
        computing: Algorithm::ALL.to_vec(),
        expected: Box::new(move || expected),
    };
    // Wrong, missing or unusable: nothing of the append counts.
    let wrong = svc
        .append(
            &owner,
            &up.id,
            0,
            trailing(Ok(vec![md5(b"x")])),
            body(b"hello"),
        )
        .await
        .unwrap_err();
    assert!(matches!(wrong, Error::DigestMismatch(_)), "{wrong:?}");
    let missing = Err(Error::InvalidTrailer("absent".into()));
    let err = svc
        .append(&owner, &up.id, 0, trailing(missing), body(b"hello"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTrailer(_)), "{err:?}");
    let only_md5 = Checks::Trailing {
        computing: vec![Algorithm::Md5],
        expected: Box::new(|| Ok(vec![Checksum::new(Algorithm::Sha1, vec![0; 20]).unwrap()])),
    };
    let err = svc
        .append(&owner, &up.id, 0, only_md5, body(b"hello"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTrailer(_)), "{err:?}");
    assert_eq!(svc.get_upload(&owner, &up.id).await.unwrap().offset, 0);
    // Right: it counts.
    match svc
        .append(
            &owner,
            &up.id,
            0,
            trailing(Ok(vec![md5(b"hello")])),
            body(b"hello"),
        )
        .await
        .unwrap()
    {
        AppendOutcome::Done(a) => assert_eq!(a.upload.offset, 5),
        AppendOutcome::Interrupted { error, .. } => panic!("{error}"),
    }
}

#[tokio::test]
async fn one_append_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let up = svc
        .create_append(&owner, new_append(Some(100)))
        .await
        .unwrap();
    // A body that says when it is first read (the append then holds the
    // upload), sends a little, and waits until told to go on.
    let (reading, read_started) = tokio::sync::oneshot::channel::<()>();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let slow: ByteStream = Box::pin(futures::StreamExt::chain(
        futures::stream::once(async move {
            reading.send(()).ok();
            Ok(Bytes::from_static(b"abc"))
        }),
        futures::stream::once(async move {
            wait.await.ok();
            Ok(Bytes::from_static(b"def"))
        }),
    ));
    let running = {
        let (svc, owner, id) = (svc.clone(), owner.clone(), up.id.clone());
        tokio::spawn(async move { svc.append(&owner, &id, 0, Checks::None, slow).await })
    };
    read_started.await.unwrap();
    let second = svc
        .append(&owner, &up.id, 0, Checks::None, body(b"zzz"))
        .await
        .unwrap_err();
    assert!(matches!(second, Error::Locked), "{second:?}");
    let declare = svc.declare_length(&owner, &up.id, 100).await.unwrap_err();
    assert!(matches!(declare, Error::Locked), "{declare:?}");
    go.send(()).unwrap();
    match running.await.unwrap().unwrap() {
        AppendOutcome::Done(a) => assert_eq!(a.upload.offset, 6),
        AppendOutcome::Interrupted { error, .. } => panic!("{error}"),
    }
}

#[tokio::test]
async fn idle_uploads_expire_and_ended_ones_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let owner = Owner::local();
    {
        let limits = Limits {
            upload_ttl: std::time::Duration::ZERO,
            ..Limits::default()
        };
        let svc = service_with(dir.path(), limits).await;
        let up = svc
            .create_append(&owner, new_append(Some(10)))
            .await
            .unwrap();
        let err = svc.get_upload(&owner, &up.id).await.unwrap_err();
        assert!(
            matches!(err, Error::UploadGone(EndReason::Expired)),
            "{err:?}"
        );
        let err = svc
            .append(&owner, &up.id, 0, Checks::None, body(b"x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UploadGone(EndReason::Expired)),
            "{err:?}"
        );
        // Deleting an expired upload still frees it.
        svc.delete_upload(&owner, &up.id).await.unwrap();
        let err = svc.get_upload(&owner, &up.id).await.unwrap_err();
        assert!(
            matches!(err, Error::UploadGone(EndReason::Terminated)),
            "{err:?}"
        );
    }
    let svc = service(dir.path()).await;
    let up = svc
        .create_append(&owner, new_append(Some(3)))
        .await
        .unwrap();
    svc.delete_upload(&owner, &up.id).await.unwrap();
    let err = svc.get_upload(&owner, &up.id).await.unwrap_err();
    assert!(
        matches!(err, Error::UploadGone(EndReason::Terminated)),
        "{err:?}"
    );
    // Someone else's ended upload is as unknown as one that never was.
    let other = Owner("someone-else".into());
    let err = svc.get_upload(&other, &up.id).await.unwrap_err();
    assert!(matches!(err, Error::UploadNotFound), "{err:?}");
    let err = svc
        .get_upload(&owner, &UploadId::random())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UploadNotFound), "{err:?}");
}
