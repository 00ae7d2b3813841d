//! The `Catalog` conformance cases.

mod access;
mod batch;
mod orphans;

pub use access::*;
pub use batch::*;
pub use orphans::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::catalog::{Catalog, CatalogError, NewBlob};
use crate::hash::ContentHash;
use crate::model::{
    Blob, BlobId, ChunkRecord, Claims, Concat, EndReason, EndedUpload, FileId, FileQuery, NewFile,
    Owner, Staging, Timestamp, Upload, UploadId, UploadMode,
};

const MIB: u64 = 1 << 20;

fn owner(name: &str) -> Owner {
    Owner(name.to_owned())
}

fn hash_of(tag: &str) -> ContentHash {
    ContentHash::of_bytes(tag.as_bytes())
}

/// An unfinished chunked upload of `owner`, as a test's starting point.
pub fn upload(owner: &Owner, name: &str, size: Option<u64>, hash: Option<ContentHash>) -> Upload {
    Upload {
        id: UploadId::random(),
        owner: owner.clone(),
        name: name.to_owned(),
        mime: "application/octet-stream".to_owned(),
        size,
        claims: Claims {
            hash,
            md5: None,
            sha256: None,
        },
        chunk_size: 8 * MIB,
        mode: UploadMode::Chunks,
        staging: Staging {
            blob: BlobId::random(),
            handle: String::new(),
        },
        offset: 0,
        tail: None,
        file: None,
        concat: Concat::None,
        meta: None,
        created_at: Timestamp(1_000),
        expires_at: Timestamp(90_000),
        received: Vec::new(),
    }
}

fn chunk(index: u32, fill: u8) -> ChunkRecord {
    ChunkRecord {
        index,
        digests: vec![[fill; 32], [fill ^ 1; 32]],
        receipt: format!("r{index}"),
    }
}

/// A file of `owner` to record, created at `at`.
pub fn new_file(owner: &Owner, name: &str, at: i64) -> NewFile {
    NewFile {
        id: FileId::random(),
        owner: owner.clone(),
        name: name.to_owned(),
        mime: "text/plain".to_owned(),
        created_at: Timestamp(at),
        md5: None,
        sha256: None,
    }
}

fn new_blob(up: &Upload, hash: ContentHash) -> NewBlob {
    NewBlob {
        blob: Blob {
            id: up.staging.blob.clone(),
            hash,
            size: up.size.unwrap_or(0),
            md5: None,
            sha256: None,
        },
        created_at: Timestamp(5_000),
    }
}

/// Inserts an upload and completes it into a file named `name`.
async fn stored_file(
    cat: &dyn Catalog,
    who: &Owner,
    name: &str,
    tag: &str,
    at: i64,
) -> crate::model::FileRecord {
    let up = upload(who, name, Some(10), None);
    cat.insert_upload(&up).await.unwrap();
    cat.complete_upload(
        &up.id,
        &new_blob(&up, hash_of(tag)),
        &new_file(who, name, at),
    )
    .await
    .unwrap()
    .file
}

pub async fn upload_round_trip(cat: Arc<dyn Catalog>) {
    let mut up = upload(&owner("ann"), "dir/a.bin", None, None);
    up.mode = UploadMode::Append;
    up.claims = Claims {
        hash: Some(hash_of("x")),
        md5: Some([7; 16]),
        sha256: Some([9; 32]),
    };
    up.staging.handle = "multipart-123".to_owned();
    up.tail = Some(vec![1, 2, 3]);
    up.offset = 77;
    up.meta = Some("filename ZGlyL2EuYmlu,is_confidential".to_owned());
    up.concat = Concat::Partial;
    cat.insert_upload(&up).await.unwrap();
    assert_eq!(cat.get_upload(&up.id).await.unwrap(), Some(up.clone()));
    assert_eq!(cat.get_upload(&UploadId::random()).await.unwrap(), None);

    // A final upload keeps its parts in order, repeats included.
    let mut fin = upload(&owner("ann"), "whole", None, None);
    fin.mode = UploadMode::Append;
    let other = UploadId::random();
    let parts: Vec<UploadId> = (0..12)
        .map(|i| {
            if i % 5 == 3 {
                up.id.clone()
            } else {
                UploadId::random()
            }
        })
        .chain([other])
        .collect();
    fin.concat = Concat::Final(parts);
    cat.insert_upload(&fin).await.unwrap();
    assert_eq!(cat.get_upload(&fin.id).await.unwrap(), Some(fin));
}

pub async fn ended_uploads_are_remembered(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let up = upload(&ann, "a", Some(20 * MIB), None);
    cat.insert_upload(&up).await.unwrap();
    cat.record_chunk(&up.id, &chunk(0, 1), Timestamp(1))
        .await
        .unwrap();
    assert_eq!(cat.ended_upload(&up.id).await.unwrap(), None);
    assert!(
        cat.end_upload(&up.id, EndReason::Expired, Timestamp(777))
            .await
            .unwrap()
    );
    assert_eq!(cat.get_upload(&up.id).await.unwrap(), None);
    assert!(cat.chunks(&up.id).await.unwrap().is_empty());
    let ended = EndedUpload {
        owner: ann.clone(),
        reason: EndReason::Expired,
        ended_at: Timestamp(777),
    };
    assert_eq!(cat.ended_upload(&up.id).await.unwrap(), Some(ended.clone()));
    // Ending it again changes nothing.
    assert!(
        !cat.end_upload(&up.id, EndReason::Terminated, Timestamp(999))
            .await
            .unwrap()
    );
    assert_eq!(cat.ended_upload(&up.id).await.unwrap(), Some(ended));

    // A plain delete leaves nothing behind.
    let quiet = upload(&ann, "b", Some(1), None);
    cat.insert_upload(&quiet).await.unwrap();
    assert!(cat.delete_upload(&quiet.id).await.unwrap());
    assert_eq!(cat.ended_upload(&quiet.id).await.unwrap(), None);
    for reason in [
        EndReason::Terminated,
        EndReason::Concatenated,
        EndReason::Rejected,
    ] {
        let up = upload(&ann, "c", Some(1), None);
        cat.insert_upload(&up).await.unwrap();
        cat.end_upload(&up.id, reason, Timestamp(5)).await.unwrap();
        assert_eq!(
            cat.ended_upload(&up.id).await.unwrap().unwrap().reason,
            reason
        );
    }
}

pub async fn finals_are_found_by_their_parts(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let part = |name| {
        let mut p = upload(&ann, name, Some(10), None);
        p.mode = UploadMode::Append;
        p.concat = Concat::Partial;
        p
    };
    let (a, b) = (part("a"), part("b"));
    cat.insert_upload(&a).await.unwrap();
    cat.insert_upload(&b).await.unwrap();
    let mut finals = Vec::new();
    for parts in [
        vec![a.id.clone(), b.id.clone(), a.id.clone()],
        vec![b.id.clone()],
    ] {
        let mut fin = upload(&ann, "whole", None, None);
        fin.mode = UploadMode::Append;
        fin.concat = Concat::Final(parts);
        cat.insert_upload(&fin).await.unwrap();
        finals.push(fin);
    }
    let mut both = vec![finals[0].id.clone(), finals[1].id.clone()];
    both.sort();
    assert_eq!(
        cat.finals_with_part(&a.id).await.unwrap(),
        vec![finals[0].id.clone()]
    );
    assert_eq!(cat.finals_with_part(&b.id).await.unwrap(), both);
    assert!(
        cat.finals_with_part(&UploadId::random())
            .await
            .unwrap()
            .is_empty()
    );

    // A completed final no longer waits for anything.
    cat.complete_upload(
        &finals[1].id,
        &new_blob(&finals[1], hash_of("whole")),
        &new_file(&ann, "whole", 1),
    )
    .await
    .unwrap();
    assert_eq!(
        cat.finals_with_part(&b.id).await.unwrap(),
        vec![finals[0].id.clone()]
    );
    // Nor does one that is gone.
    cat.delete_upload(&finals[0].id).await.unwrap();
    assert!(cat.finals_with_part(&a.id).await.unwrap().is_empty());
}

pub async fn expired_uploads_are_found_soonest_first(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let at = |name, expires| {
        let mut u = upload(&ann, name, Some(10), Some(hash_of(name)));
        u.expires_at = Timestamp(expires);
        u
    };
    let (a, b, done) = (at("a", 100), at("b", 300), at("done", 50));
    let mut partial = at("partial", 150);
    partial.mode = UploadMode::Append;
    partial.concat = Concat::Partial;
    let mut fin = at("final", 20);
    fin.mode = UploadMode::Append;
    fin.concat = Concat::Final(vec![partial.id.clone()]);
    for u in [&a, &b, &done, &partial, &fin] {
        cat.insert_upload(u).await.unwrap();
    }
    cat.complete_upload(
        &done.id,
        &new_blob(&done, hash_of("done")),
        &new_file(&ann, "done", 1),
    )
    .await
    .unwrap();
    // The completed upload never expires; a final one does, like any.
    assert_eq!(
        cat.expired_uploads(Timestamp(200), 10).await.unwrap(),
        vec![fin.id.clone(), a.id.clone(), partial.id.clone()]
    );
    assert_eq!(
        cat.expired_uploads(Timestamp(200), 1).await.unwrap(),
        vec![fin.id.clone()]
    );
    assert_eq!(
        cat.expired_uploads(Timestamp(100), 10).await.unwrap(),
        vec![fin.id.clone(), a.id.clone()]
    );
    // A chunk moves the expiry on, and so does a touch.
    cat.record_chunk(&a.id, &chunk(0, 1), Timestamp(1_000))
        .await
        .unwrap();
    cat.touch_upload(&fin.id, Timestamp(1_000)).await.unwrap();
    assert_eq!(
        cat.expired_uploads(Timestamp(200), 10).await.unwrap(),
        vec![partial.id.clone()]
    );
    cat.delete_upload(&partial.id).await.unwrap();
    assert!(
        cat.expired_uploads(Timestamp(200), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn staging_in_use_follows_the_uploads(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let (open, done, ended) = (
        upload(&ann, "open", Some(10), Some(hash_of("open"))),
        upload(&ann, "done", Some(10), Some(hash_of("done"))),
        upload(&ann, "ended", Some(10), Some(hash_of("ended"))),
    );
    for u in [&open, &done, &ended] {
        cat.insert_upload(u).await.unwrap();
        assert!(cat.staging_in_use(&u.staging.blob).await.unwrap());
    }
    assert!(!cat.staging_in_use(&BlobId::random()).await.unwrap());
    cat.complete_upload(
        &done.id,
        &new_blob(&done, hash_of("done")),
        &new_file(&ann, "done", 1),
    )
    .await
    .unwrap();
    assert!(
        cat.staging_in_use(&done.staging.blob).await.unwrap(),
        "a completed upload's blob"
    );
    cat.end_upload(&ended.id, EndReason::Terminated, Timestamp(5))
        .await
        .unwrap();
    assert!(!cat.staging_in_use(&ended.staging.blob).await.unwrap());
    assert!(cat.staging_in_use(&open.staging.blob).await.unwrap());
}

pub async fn chunks_are_recorded_once(cat: Arc<dyn Catalog>) {
    let up = upload(&owner("ann"), "a", Some(40 * MIB), Some(hash_of("a")));
    cat.insert_upload(&up).await.unwrap();
    for (i, fill) in [(3, 30), (0, 1), (2, 20), (3, 99)] {
        cat.record_chunk(&up.id, &chunk(i, fill), Timestamp(100_000 + i as i64))
            .await
            .unwrap();
    }
    let got = cat.get_upload(&up.id).await.unwrap().unwrap();
    assert_eq!(got.received, vec![0, 2, 3]);
    assert_eq!(
        got.expires_at,
        Timestamp(100_003),
        "recording moves the expiry"
    );
    let chunks = cat.chunks(&up.id).await.unwrap();
    assert_eq!(
        chunks,
        vec![chunk(0, 1), chunk(2, 20), chunk(3, 30)],
        "the first record of chunk 3 stands"
    );
}

pub async fn recording_needs_the_upload(cat: Arc<dyn Catalog>) {
    let err = cat
        .record_chunk(&UploadId::random(), &chunk(0, 1), Timestamp(1))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
    let err = cat
        .record_append(&UploadId::random(), 0, 5, &[], None, Timestamp(1))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
}

pub async fn resumable_uploads_are_found_by_owner_hash_and_size(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let h = hash_of("movie");
    let mut older = upload(&ann, "movie.mkv", Some(100), Some(h));
    older.created_at = Timestamp(1);
    let mut renamed = upload(&ann, "film.mkv", Some(100), Some(h));
    renamed.created_at = Timestamp(2);
    let newer = upload(&ann, "movie.mkv", Some(100), Some(h));
    for u in [
        &older,
        &renamed,
        &newer,
        &upload(&bob, "movie.mkv", Some(100), Some(h)),
    ] {
        cat.insert_upload(u).await.unwrap();
    }
    let ids = |found: Vec<Upload>| found.into_iter().map(|u| u.id).collect::<Vec<_>>();
    // Whatever their names, newest first.
    assert_eq!(
        ids(cat.find_resumable(&ann, &h, 100).await.unwrap()),
        vec![newer.id.clone(), renamed.id.clone(), older.id.clone()]
    );
    assert!(cat.find_resumable(&ann, &h, 101).await.unwrap().is_empty());
    assert!(
        cat.find_resumable(&ann, &hash_of("x"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        cat.find_resumable(&owner("cy"), &h, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Completed uploads are not resumable.
    for u in [&newer, &older] {
        cat.complete_upload(&u.id, &new_blob(u, h), &new_file(&ann, "movie.mkv", 9))
            .await
            .unwrap();
    }
    assert_eq!(
        ids(cat.find_resumable(&ann, &h, 100).await.unwrap()),
        vec![renamed.id.clone()]
    );
}

pub async fn uploads_are_relabelled_touched_and_reserved(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let up = upload(&ann, "a.bin", Some(100), Some(hash_of("a")));
    cat.insert_upload(&up).await.unwrap();
    let claims = Claims {
        hash: Some(hash_of("a")),
        md5: Some([7; 16]),
        sha256: None,
    };
    cat.relabel_upload(&up.id, "b.txt", "text/plain", &claims)
        .await
        .unwrap();
    cat.touch_upload(&up.id, Timestamp(123_456)).await.unwrap();
    let got = cat.get_upload(&up.id).await.unwrap().unwrap();
    assert_eq!(
        (
            got.name.as_str(),
            got.mime.as_str(),
            &got.claims,
            got.expires_at
        ),
        ("b.txt", "text/plain", &claims, Timestamp(123_456))
    );
    // A reservation counts a deferred upload ahead of its offset; a new one
    // replaces it; the offset, and then the length, count once larger.
    let mut deferred = upload(&ann, "d", None, None);
    deferred.mode = UploadMode::Append;
    cat.insert_upload(&deferred).await.unwrap();
    let now = Timestamp(10);
    let uploading = async || cat.usage(&ann, now, false).await.unwrap().uploading;
    cat.reserve_upload(&deferred.id, 500).await.unwrap();
    assert_eq!(uploading().await, 100 + 500);
    cat.reserve_upload(&deferred.id, 200).await.unwrap();
    assert_eq!(uploading().await, 100 + 200);
    cat.record_append(&deferred.id, 0, 300, &[], None, Timestamp(90_000))
        .await
        .unwrap();
    assert_eq!(uploading().await, 100 + 300);
    cat.set_upload_size(&deferred.id, 250).await.unwrap();
    assert_eq!(uploading().await, 100 + 250);
    // Gone or finished: NotFound, for each.
    let gone = UploadId::random();
    assert!(matches!(
        cat.relabel_upload(&gone, "x", "text/plain", &claims).await,
        Err(CatalogError::NotFound)
    ));
    assert!(matches!(
        cat.touch_upload(&gone, Timestamp(1)).await,
        Err(CatalogError::NotFound)
    ));
    assert!(matches!(
        cat.reserve_upload(&gone, 1).await,
        Err(CatalogError::NotFound)
    ));
    cat.complete_upload(
        &up.id,
        &new_blob(&up, hash_of("a")),
        &new_file(&ann, "b.txt", 9),
    )
    .await
    .unwrap();
    assert!(matches!(
        cat.touch_upload(&up.id, Timestamp(1)).await,
        Err(CatalogError::NotFound)
    ));
}

pub async fn appends_compare_and_set_the_offset(cat: Arc<dyn Catalog>) {
    let mut up = upload(&owner("ann"), "a", None, None);
    up.mode = UploadMode::Append;
    cat.insert_upload(&up).await.unwrap();
    cat.record_append(&up.id, 0, 100, &[], Some(&[5, 5]), Timestamp(7))
        .await
        .unwrap();
    let err = cat
        .record_append(&up.id, 0, 200, &[], None, Timestamp(8))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::OffsetConflict), "{err:?}");
    let got = cat.get_upload(&up.id).await.unwrap().unwrap();
    assert_eq!(
        (got.offset, got.tail.as_deref(), got.expires_at),
        (100, Some(&[5u8, 5][..]), Timestamp(7))
    );
    cat.record_append(&up.id, 100, 8 * MIB, &[chunk(0, 4)], None, Timestamp(9))
        .await
        .unwrap();
    let got = cat.get_upload(&up.id).await.unwrap().unwrap();
    assert_eq!(
        (got.offset, got.tail, got.received),
        (8 * MIB, None, vec![0])
    );
    assert_eq!(cat.chunks(&up.id).await.unwrap(), vec![chunk(0, 4)]);
}

pub async fn deferred_length_is_set_once_known(cat: Arc<dyn Catalog>) {
    let up = upload(&owner("ann"), "a", None, None);
    cat.insert_upload(&up).await.unwrap();
    cat.set_upload_size(&up.id, 12345).await.unwrap();
    assert_eq!(
        cat.get_upload(&up.id).await.unwrap().unwrap().size,
        Some(12345)
    );
    let err = cat
        .set_upload_size(&UploadId::random(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
}

pub async fn deleting_an_upload_forgets_its_chunks(cat: Arc<dyn Catalog>) {
    let up = upload(&owner("ann"), "a", Some(20 * MIB), None);
    cat.insert_upload(&up).await.unwrap();
    cat.record_chunk(&up.id, &chunk(1, 1), Timestamp(1))
        .await
        .unwrap();
    assert!(cat.delete_upload(&up.id).await.unwrap());
    assert!(!cat.delete_upload(&up.id).await.unwrap());
    assert_eq!(cat.get_upload(&up.id).await.unwrap(), None);
    assert!(cat.chunks(&up.id).await.unwrap().is_empty());
}

pub async fn completion_stores_blob_and_file(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let up = upload(&ann, "docs/a.txt", Some(10), None);
    cat.insert_upload(&up).await.unwrap();
    let h = hash_of("a");
    let nf = new_file(&ann, "docs/a.txt", 42);
    let done = cat
        .complete_upload(&up.id, &new_blob(&up, h), &nf)
        .await
        .unwrap();
    assert!(done.kept_own_blob);
    assert_eq!(
        (
            done.file.id.clone(),
            done.file.name.as_str(),
            done.file.created_at
        ),
        (nf.id.clone(), "docs/a.txt", Timestamp(42))
    );
    assert_eq!(done.file.blob.id, up.staging.blob);
    assert_eq!(done.file.blob.hash, h);
    assert_eq!(cat.get_file(&nf.id).await.unwrap(), Some(done.file.clone()));
    assert_eq!(
        cat.find_blob(&h).await.unwrap().map(|b| b.id),
        Some(up.staging.blob.clone())
    );
    assert_eq!(
        cat.get_upload(&up.id).await.unwrap().unwrap().file,
        Some(nf.id)
    );
    let err = cat
        .complete_upload(
            &UploadId::random(),
            &new_blob(&up, h),
            &new_file(&ann, "x", 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
}

pub async fn same_content_is_stored_once(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let h = hash_of("same");
    let (a, b) = (
        upload(&ann, "a", Some(10), None),
        upload(&ann, "b", Some(10), None),
    );
    cat.insert_upload(&a).await.unwrap();
    cat.insert_upload(&b).await.unwrap();
    // Both complete at once.
    let (blob_a, blob_b) = (new_blob(&a, h), new_blob(&b, h));
    let (file_a, file_b) = (new_file(&ann, "a", 1), new_file(&ann, "b", 2));
    let (ra, rb) = tokio::join!(
        cat.complete_upload(&a.id, &blob_a, &file_a),
        cat.complete_upload(&b.id, &blob_b, &file_b),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(
        ra.kept_own_blob != rb.kept_own_blob,
        "exactly one blob is kept"
    );
    assert_eq!(ra.file.blob.id, rb.file.blob.id);
    let kept = ra.file.blob.id.clone();
    // The blob goes with its last file.
    let first = cat.delete_file(&ann, &ra.file.id).await.unwrap().unwrap();
    assert_eq!(first.freed_blob, None);
    assert!(cat.find_blob(&h).await.unwrap().is_some());
    let last = cat.delete_file(&ann, &rb.file.id).await.unwrap().unwrap();
    assert_eq!(last.freed_blob, Some(kept));
    assert!(cat.find_blob(&h).await.unwrap().is_none());
}

pub async fn completion_fills_in_verified_checksums(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let h = hash_of("sums");
    let first = upload(&ann, "a", Some(10), None);
    cat.insert_upload(&first).await.unwrap();
    cat.complete_upload(&first.id, &new_blob(&first, h), &new_file(&ann, "a", 1))
        .await
        .unwrap();
    let second = upload(&ann, "b", Some(10), None);
    cat.insert_upload(&second).await.unwrap();
    let mut nb = new_blob(&second, h);
    nb.blob.md5 = Some([3; 16]);
    let done = cat
        .complete_upload(&second.id, &nb, &new_file(&ann, "b", 2))
        .await
        .unwrap();
    assert!(!done.kept_own_blob);
    assert_eq!(done.file.blob.md5, Some([3; 16]));
    cat.set_blob_checksums(&done.file.blob.id, Some([3; 16]), Some([4; 32]))
        .await
        .unwrap();
    let blob = cat.find_blob(&h).await.unwrap().unwrap();
    assert_eq!((blob.md5, blob.sha256), (Some([3; 16]), Some([4; 32])));
    let err = cat
        .set_blob_checksums(&BlobId::random(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
}

pub async fn instant_files_reference_existing_blobs(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let f = stored_file(cat.as_ref(), &ann, "a", "inst", 1).await;
    let nf = new_file(&ann, "copy of a", 2);
    let copy = cat.insert_file(&nf, &f.blob.id).await.unwrap();
    assert_eq!((copy.id, copy.blob.clone()), (nf.id, f.blob.clone()));
    let err = cat
        .insert_file(&new_file(&ann, "x", 3), &BlobId::random())
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
    // Two references now: the first deletion frees nothing.
    assert_eq!(
        cat.delete_file(&ann, &f.id)
            .await
            .unwrap()
            .unwrap()
            .freed_blob,
        None
    );
}

pub async fn files_are_deleted_by_their_owner_only(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let f = stored_file(cat.as_ref(), &ann, "a", "own", 1).await;
    assert_eq!(cat.delete_file(&bob, &f.id).await.unwrap(), None);
    assert!(cat.get_file(&f.id).await.unwrap().is_some());
    assert!(cat.delete_file(&ann, &f.id).await.unwrap().is_some());
    assert_eq!(cat.delete_file(&ann, &f.id).await.unwrap(), None);
    assert_eq!(cat.get_file(&f.id).await.unwrap(), None);
}

pub async fn listing_pages_newest_first(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let mut ids = Vec::new();
    for (i, name) in [
        "Alpha.txt",
        "beta.txt",
        "photos/ALPHA.jpg",
        "Résumé.pdf",
        "delta",
    ]
    .iter()
    .enumerate()
    {
        ids.push(
            stored_file(cat.as_ref(), &ann, name, name, i as i64)
                .await
                .id,
        );
    }
    stored_file(cat.as_ref(), &bob, "alpha-bob", "bob", 9).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = FileQuery {
            owner: ann.clone(),
            search: None,
            cursor: cursor.clone(),
            limit: 2,
        };
        let page = cat.list_files(&q).await.unwrap();
        assert!(page.files.len() <= 2);
        seen.extend(page.files.into_iter().map(|f| f.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "every file once, newest first");
    let q = FileQuery {
        owner: ann.clone(),
        search: Some("alpha".into()),
        cursor: None,
        limit: 10,
    };
    let names: Vec<String> = cat
        .list_files(&q)
        .await
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, vec!["photos/ALPHA.jpg", "Alpha.txt"]);
    let search = |text: &str| FileQuery {
        owner: ann.clone(),
        search: Some(text.into()),
        cursor: None,
        limit: 10,
    };
    let found = cat.list_files(&search("RÉSUM")).await.unwrap().files;
    assert_eq!(found.len(), 1, "case folding is Unicode");
    assert_eq!(found[0].name, "Résumé.pdf");
    assert!(
        cat.list_files(&search("%")).await.unwrap().files.is_empty(),
        "search is literal"
    );
    let q = FileQuery {
        owner: ann.clone(),
        search: None,
        cursor: Some("not-a-cursor".into()),
        limit: 10,
    };
    let err = cat.list_files(&q).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidCursor), "{err:?}");
}

pub async fn locks_are_exclusive(cat: Arc<dyn Catalog>) {
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (cat, inside, most) = (cat.clone(), inside.clone(), most.clone());
            tokio::spawn(async move {
                for _ in 0..15 {
                    let _g = cat.lock("k").await.unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..5 {
                        tokio::task::yield_now().await;
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // A different key is not blocked by "k" held elsewhere.
    let _held = cat.lock("k").await.unwrap();
    let _other = cat.lock("other").await.unwrap();
    drop(_held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two holders of one key at once"
    );
}

pub async fn try_lock_does_not_wait(cat: Arc<dyn Catalog>) {
    let held = cat.try_lock("k").await.unwrap().expect("a free key");
    assert!(cat.try_lock("k").await.unwrap().is_none(), "a held key");
    let waiting = {
        let cat = cat.clone();
        tokio::spawn(async move { cat.lock("k").await.map(|_| ()) })
    };
    assert!(cat.try_lock("other").await.unwrap().is_some());
    drop(held);
    waiting.await.unwrap().unwrap();
    let again = cat.try_lock("k").await.unwrap();
    assert!(again.is_some(), "released once every holder let go");
}
