//! Concatenation in the core (what tus `Upload-Concat` uses), on the real
//! fs store and SQLite catalog: partial uploads finished before or after
//! their final upload, the final file's content and hash, dedup, and what
//! happens to the parts.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tusk_catalog::SqliteCatalog;
use tusk_core::model::{Concat, EndReason, FileRecord, Owner, Upload, UploadId};
use tusk_core::service::{AppendOutcome, Checks, NewAppendUpload, NewFinalUpload};
use tusk_core::store::ByteStream;
use tusk_core::{ContentHash, Error, Limits, UploadService};
use tusk_store::FsStore;

const MIB: usize = 1 << 20;

async fn service(dir: &Path) -> Arc<UploadService> {
    let store = FsStore::open(dir.join("data")).unwrap();
    let catalog = SqliteCatalog::open(&dir.join("catalog.db")).await.unwrap();
    Arc::new(UploadService::new(
        Arc::new(store),
        Arc::new(catalog),
        Limits::default(),
    ))
}

fn body(data: &[u8]) -> ByteStream {
    let frames: Vec<std::io::Result<Bytes>> = data
        .chunks(300_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(frames))
}

fn data(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(29 + seed) ^ (i >> 9)) as u8)
        .collect()
}

fn blobs_on_disk(dir: &Path) -> usize {
    walk(&dir.join("data").join("blobs"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn partial(svc: &Arc<UploadService>, size: Option<usize>) -> Upload {
    let req = NewAppendUpload {
        name: "untitled".into(),
        mime: None,
        size: size.map(|s| s as u64),
        meta: None,
        concat: Concat::Partial,
    };
    svc.create_append(&Owner::local(), req).await.unwrap()
}

/// Appends all of `bytes` to a part and finishes it.
async fn fill(svc: &Arc<UploadService>, part: &Upload, bytes: &[u8]) {
    let owner = Owner::local();
    if part.size.is_none() {
        svc.declare_length(&owner, &part.id, bytes.len() as u64)
            .await
            .unwrap();
    }
    match svc
        .append(&owner, &part.id, 0, Checks::None, body(bytes))
        .await
        .unwrap()
    {
        AppendOutcome::Done(a) => assert!(a.full),
        AppendOutcome::Interrupted { error, .. } => panic!("{error}"),
    }
    svc.complete_part(&owner, &part.id).await.unwrap();
}

fn final_of(parts: &[&Upload]) -> NewFinalUpload {
    NewFinalUpload {
        name: "whole.bin".into(),
        mime: None,
        meta: Some("filename d2hvbGUuYmlu".into()),
        parts: parts.iter().map(|p| p.id.clone()).collect(),
    }
}

async fn read_back(svc: &UploadService, file: &FileRecord) -> Vec<u8> {
    let d = svc.read_file(file.clone(), None).await.unwrap();
    tusk_core::conformance::collect(d.body).await.unwrap()
}

async fn assert_gone(svc: &UploadService, id: &UploadId, why: EndReason) {
    match svc.get_upload(&Owner::local(), id).await {
        Err(Error::UploadGone(reason)) => assert_eq!(reason, why),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_parts_concatenate_into_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    // Odd sizes: the parts' boundaries fall inside 4 MiB blocks.
    let pieces = [data(5 * MIB + 3, 1), data(3 * MIB + 1, 2), data(7, 3)];
    let mut parts = Vec::new();
    for p in &pieces {
        let part = partial(&svc, Some(p.len())).await;
        fill(&svc, &part, p).await;
        parts.push(part);
    }
    let whole: Vec<u8> = pieces.concat();
    let (fin, file) = svc
        .create_final(
            &Owner::local(),
            final_of(&[&parts[0], &parts[1], &parts[2]]),
        )
        .await
        .unwrap();
    let file = file.expect("finished parts complete the final upload at once");
    assert_eq!(fin.size, Some(whole.len() as u64));
    assert_eq!(fin.offset, whole.len() as u64);
    assert_eq!(fin.file.as_ref(), Some(&file.id));
    assert_eq!(fin.meta.as_deref(), Some("filename d2hvbGUuYmlu"));
    assert_eq!(file.name, "whole.bin");
    assert_eq!(file.blob.hash, ContentHash::of_bytes(&whole));
    assert!(read_back(&svc, &file).await == whole);
    // The parts are gone, bytes and all: one blob remains.
    for p in &parts {
        assert_gone(&svc, &p.id, EndReason::Concatenated).await;
    }
    assert_eq!(blobs_on_disk(dir.path()), 1);

    // The same content concatenated again is the same blob.
    let again = partial(&svc, Some(whole.len())).await;
    fill(&svc, &again, &whole).await;
    let (_, twin) = svc
        .create_final(&Owner::local(), final_of(&[&again]))
        .await
        .unwrap();
    assert_eq!(twin.unwrap().blob.id, file.blob.id);
    assert_eq!(blobs_on_disk(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_upload_waits_for_unfinished_parts() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let pieces = [data(MIB + 11, 4), data(2 * MIB, 5)];
    // Lengths not known yet, nothing sent yet.
    let a = partial(&svc, None).await;
    let b = partial(&svc, None).await;
    let (fin, file) = svc.create_final(&owner, final_of(&[&a, &b])).await.unwrap();
    assert!(file.is_none());
    assert_eq!(fin.size, None);
    assert_eq!(fin.offset, 0);
    // Nobody writes to a final upload.
    let err = svc
        .append(&owner, &fin.id, 0, Checks::None, body(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongMode), "{err:?}");

    fill(&svc, &b, &pieces[1]).await;
    let waiting = svc.get_upload(&owner, &fin.id).await.unwrap();
    assert!(waiting.file.is_none());
    fill(&svc, &a, &pieces[0]).await;
    let done = svc.get_upload(&owner, &fin.id).await.unwrap();
    let file = svc
        .get_file(&owner, done.file.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(done.size, Some((pieces[0].len() + pieces[1].len()) as u64));
    assert!(read_back(&svc, &file).await == pieces.concat());
}

#[tokio::test]
async fn only_partial_uploads_can_be_parts() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let plain = svc
        .create_append(
            &owner,
            NewAppendUpload {
                name: "a".into(),
                mime: None,
                size: Some(1),
                meta: None,
                concat: Concat::None,
            },
        )
        .await
        .unwrap();
    let part = partial(&svc, Some(1)).await;
    let mut req = final_of(&[&part, &plain]);
    let err = svc.create_final(&owner, req.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPart { part, .. } if *part == plain.id.to_string()),
        "{err:?}"
    );
    req.parts = vec![UploadId::random()];
    let err = svc.create_final(&owner, req.clone()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPart { .. }), "{err:?}");
    req.parts = Vec::new();
    let err = svc.create_final(&owner, req).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPart { .. }), "{err:?}");
    // Parts complete only through concatenation.
    let err = svc.complete(&owner, &part.id).await.unwrap_err();
    assert!(matches!(err, Error::WrongMode), "{err:?}");
}

#[tokio::test]
async fn terminating_a_part_ends_the_final_upload_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let owner = Owner::local();
    let a = partial(&svc, Some(3)).await;
    let b = partial(&svc, Some(4)).await;
    fill(&svc, &a, b"abc").await;
    let (fin, _) = svc.create_final(&owner, final_of(&[&a, &b])).await.unwrap();
    svc.delete_upload(&owner, &a.id).await.unwrap();
    assert_gone(&svc, &a.id, EndReason::Terminated).await;
    assert_gone(&svc, &fin.id, EndReason::Terminated).await;
    // The other part is still there, and its bytes can still go somewhere.
    assert!(svc.get_upload(&owner, &b.id).await.is_ok());
    assert_eq!(
        blobs_on_disk(dir.path()),
        0,
        "a's committed bytes are deleted"
    );
}
