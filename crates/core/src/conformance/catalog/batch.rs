//! The `Catalog` conformance cases of files recorded in batches
//! ([`Catalog::insert_files`]).

use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError, NewBlob, NewFiles};
use crate::hash::ContentHash;
use crate::model::{Blob, BlobId, FileQuery, Timestamp};

use super::{hash_of, new_file, owner, stored_file};

/// A new blob of `size` bytes with this content hash, as a batch gives it.
fn batch_blob(hash: ContentHash, size: u64) -> NewBlob {
    NewBlob {
        blob: Blob {
            id: BlobId::random(),
            hash,
            size,
            md5: None,
            sha256: None,
        },
        created_at: Timestamp(6_000),
    }
}

pub async fn batches_record_every_file_in_order(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let old = stored_file(cat.as_ref(), &ann, "old", "old", 1).await;
    let (h_old, h_one, h_two) = (hash_of("old"), hash_of("one"), hash_of("two"));
    let one = batch_blob(h_one, 3);
    let mut again = batch_blob(h_old, 10);
    again.blob.md5 = Some([8; 16]);
    let two = batch_blob(h_two, 4);
    let unused = batch_blob(hash_of("unused"), 6);
    let files = vec![
        (new_file(&ann, "f1", 2), h_one),
        (new_file(&ann, "f2", 2), h_old),
        (new_file(&ann, "f3", 2), h_one),
        (new_file(&ann, "f4", 2), h_two),
        (new_file(&ann, "f5", 2), h_old),
    ];
    let batch = NewFiles {
        // `two` given twice is still one blob, kept.
        blobs: vec![
            one.clone(),
            again.clone(),
            two.clone(),
            two.clone(),
            unused.clone(),
        ],
        files: files.clone(),
    };
    let done = cat.insert_files(&batch).await.unwrap();
    let mut redundant = done.redundant.clone();
    redundant.sort();
    let mut want = vec![again.blob.id.clone(), unused.blob.id.clone()];
    want.sort();
    assert_eq!(redundant, want, "the stored twin and the unused blob");
    let got: Vec<_> = done
        .files
        .iter()
        .map(|f| (f.id.clone(), f.name.as_str(), f.blob.id.clone()))
        .collect();
    let blob_of = [
        &one.blob.id,
        &old.blob.id,
        &one.blob.id,
        &two.blob.id,
        &old.blob.id,
    ];
    let wanted: Vec<_> = files
        .iter()
        .zip(blob_of)
        .map(|((f, _), b)| (f.id.clone(), f.name.as_str(), b.clone()))
        .collect();
    assert_eq!(got, wanted, "every file, in order, on its content");
    for record in &done.files {
        assert_eq!(
            cat.get_file(&record.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    assert_eq!(done.files[0].blob.size, 3);
    assert_eq!(
        done.files[1].blob.md5,
        Some([8; 16]),
        "the stored twin gains the verified checksum"
    );
    assert_eq!(
        cat.find_blob(&h_old).await.unwrap().unwrap().md5,
        Some([8; 16])
    );
    assert_eq!(
        cat.find_blob(&h_two).await.unwrap().map(|b| b.id),
        Some(two.blob.id.clone())
    );
    assert!(cat.find_blob(&hash_of("unused")).await.unwrap().is_none());
    // References are counted: a blob goes with its last file.
    let freed = |i: usize| {
        let (cat, ann, id) = (cat.clone(), ann.clone(), done.files[i].id.clone());
        async move {
            cat.delete_file(&ann, &id)
                .await
                .unwrap()
                .unwrap()
                .freed_blob
        }
    };
    assert_eq!(freed(0).await, None);
    assert_eq!(freed(2).await, Some(one.blob.id.clone()));
    assert_eq!(freed(1).await, None);
    assert_eq!(
        cat.delete_file(&ann, &old.id)
            .await
            .unwrap()
            .unwrap()
            .freed_blob,
        None
    );
    assert_eq!(freed(4).await, Some(old.blob.id.clone()));
    assert_eq!(freed(3).await, Some(two.blob.id.clone()));
}

pub async fn batches_are_all_or_nothing(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let old = stored_file(cat.as_ref(), &ann, "old", "old", 1).await;
    let fresh = batch_blob(hash_of("fresh"), 5);
    let batch = NewFiles {
        blobs: vec![fresh.clone()],
        files: vec![
            (new_file(&ann, "a", 2), hash_of("fresh")),
            (new_file(&ann, "b", 2), hash_of("old")),
            // Content that is not stored (freed meanwhile).
            (new_file(&ann, "c", 2), hash_of("gone")),
        ],
    };
    let err = cat.insert_files(&batch).await.unwrap_err();
    assert!(matches!(err, CatalogError::NotFound), "{err:?}");
    let q = FileQuery {
        owner: ann.clone(),
        search: None,
        cursor: None,
        limit: 10,
    };
    let listed: Vec<_> = cat
        .list_files(&q)
        .await
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(listed, vec![old.id.clone()], "no file of the batch");
    assert!(cat.get_file(&batch.files[0].0.id).await.unwrap().is_none());
    assert!(cat.find_blob(&hash_of("fresh")).await.unwrap().is_none());
    assert_eq!(
        cat.delete_file(&ann, &old.id)
            .await
            .unwrap()
            .unwrap()
            .freed_blob,
        Some(old.blob.id),
        "no reference was counted"
    );
    // An empty batch records nothing.
    let empty = NewFiles {
        blobs: Vec::new(),
        files: Vec::new(),
    };
    let done = cat.insert_files(&empty).await.unwrap();
    assert!(done.files.is_empty() && done.redundant.is_empty());
}
