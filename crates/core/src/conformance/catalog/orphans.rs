//! The `Catalog` conformance case of what the sweeper asks before deleting
//! a blob ([`Catalog::blobs_in_use`]): which records own a blob.

use std::sync::Arc;

use crate::catalog::{Catalog, NewBlob, NewFiles};
use crate::model::{Blob, BlobId, Concat, EndReason, Timestamp, UploadMode};

use super::{hash_of, new_blob, new_file, owner, upload};

/// Which of `blobs` the catalog says are in use, sorted.
async fn in_use(cat: &dyn Catalog, blobs: &[&BlobId]) -> Vec<BlobId> {
    let asked: Vec<BlobId> = blobs.iter().map(|b| (*b).clone()).collect();
    let mut got = cat.blobs_in_use(&asked).await.unwrap();
    got.sort();
    got
}

fn sorted(blobs: &[&BlobId]) -> Vec<BlobId> {
    let mut v: Vec<BlobId> = blobs.iter().map(|b| (*b).clone()).collect();
    v.sort();
    v
}

pub async fn blobs_in_use_follow_the_records(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    assert!(in_use(cat.as_ref(), &[]).await.is_empty());
    let stranger = BlobId::random();

    // An unfinished upload owns the blob it stages as (it may be committed
    // already); an unfinished partial upload too.
    let open = upload(&ann, "open", Some(10), Some(hash_of("open")));
    let mut part = upload(&ann, "part", Some(10), None);
    part.mode = UploadMode::Append;
    part.concat = Concat::Partial;
    for u in [&open, &part] {
        cat.insert_upload(u).await.unwrap();
    }
    let (open_blob, part_blob) = (&open.staging.blob, &part.staging.blob);
    assert_eq!(
        in_use(cat.as_ref(), &[open_blob, &stranger, part_blob]).await,
        sorted(&[open_blob, part_blob])
    );

    // Completed: its blob is stored, and owned as such.
    cat.complete_upload(
        &open.id,
        &new_blob(&open, hash_of("open")),
        &new_file(&ann, "open", 1),
    )
    .await
    .unwrap();
    assert_eq!(
        in_use(cat.as_ref(), &[open_blob]).await,
        vec![open_blob.clone()]
    );
    // The same content again: the upload's own blob is redundant, and no
    // longer owned once the upload completed.
    let twin = upload(&ann, "twin", Some(10), Some(hash_of("open")));
    cat.insert_upload(&twin).await.unwrap();
    assert_eq!(
        in_use(cat.as_ref(), &[&twin.staging.blob]).await,
        vec![twin.staging.blob.clone()]
    );
    let done = cat
        .complete_upload(
            &twin.id,
            &new_blob(&twin, hash_of("open")),
            &new_file(&ann, "twin", 2),
        )
        .await
        .unwrap();
    assert!(!done.kept_own_blob);
    assert!(in_use(cat.as_ref(), &[&twin.staging.blob]).await.is_empty());

    // An ended upload owns nothing.
    cat.end_upload(&part.id, EndReason::Concatenated, Timestamp(7))
        .await
        .unwrap();
    assert!(in_use(cat.as_ref(), &[part_blob]).await.is_empty());

    // A blob of a batch is owned while a file uses it; one the batch did
    // not keep is not; deleting the last file frees it.
    let (kept, unused) = (batch_blob("kept"), batch_blob("unused"));
    let batch = NewFiles {
        blobs: vec![kept.clone(), unused.clone()],
        files: vec![(new_file(&ann, "small", 3), kept.blob.hash)],
    };
    let inserted = cat.insert_files(&batch).await.unwrap();
    let (kept_id, unused_id) = (&kept.blob.id, &unused.blob.id);
    assert_eq!(
        in_use(cat.as_ref(), &[kept_id, unused_id, open_blob]).await,
        sorted(&[kept_id, open_blob])
    );
    let freed = cat
        .delete_file(&ann, &inserted.files[0].id)
        .await
        .unwrap()
        .unwrap()
        .freed_blob;
    assert_eq!(freed.as_ref(), Some(kept_id));
    assert!(in_use(cat.as_ref(), &[kept_id]).await.is_empty());
}

fn batch_blob(tag: &str) -> NewBlob {
    NewBlob {
        blob: Blob {
            id: BlobId::random(),
            hash: hash_of(tag),
            size: tag.len() as u64,
            md5: None,
            sha256: None,
        },
        created_at: Timestamp(6_000),
    }
}
