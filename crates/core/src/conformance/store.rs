//! The `BlobStore` conformance cases.

use std::sync::Arc;

use crate::model::{BlobId, ChunkRecord, ChunkRef, Staging, Timestamp};
use crate::store::{BlobStore, StoreError};

use super::{collect, pattern, pieces};

const MIB: u64 = 1 << 20;

/// Writes `data` as chunk `chunk` from its start, in pieces, and seals it.
async fn write_chunk(
    store: &dyn BlobStore,
    staging: &Staging,
    chunk: ChunkRef,
    data: &[u8],
) -> ChunkRecord {
    let mut w = store
        .open_chunk(staging, chunk, 0)
        .await
        .expect("open chunk");
    for piece in pieces(data, 300_001) {
        w.write(piece).await.expect("write");
    }
    ChunkRecord {
        index: chunk.index,
        digests: Vec::new(),
        receipt: w.finish().await.expect("finish"),
    }
}

fn chunk_ref(index: u32, chunk_size: u64, size: u64) -> ChunkRef {
    let offset = index as u64 * chunk_size;
    ChunkRef {
        index,
        offset,
        len: chunk_size.min(size - offset),
    }
}

async fn read_all(store: &dyn BlobStore, blob: &BlobId, size: u64) -> Vec<u8> {
    collect(store.read(blob, 0..size).await.expect("read"))
        .await
        .expect("read stream")
}

pub async fn chunks_in_any_order_then_commit(store: Arc<dyn BlobStore>) {
    let cs = store.min_chunk_size();
    let size = 2 * cs + 2 * MIB + 3;
    let data = pattern(1, size as usize);
    let staging = store.begin(&BlobId::random(), Some(size)).await.unwrap();
    // All three chunks at once, started last-first.
    let writes = [2u32, 0, 1].map(|i| {
        let (store, staging) = (store.clone(), staging.clone());
        let c = chunk_ref(i, cs, size);
        let bytes = data[c.offset as usize..(c.offset + c.len) as usize].to_vec();
        tokio::spawn(async move { write_chunk(store.as_ref(), &staging, c, &bytes).await })
    });
    let mut records = Vec::new();
    for w in writes {
        records.push(w.await.unwrap());
    }
    records.sort_by_key(|r| r.index);
    store.commit(&staging, size, &records).await.unwrap();
    assert!(
        read_all(store.as_ref(), &staging.blob, size).await == data,
        "content differs"
    );
    for range in [0..1, cs - 1..cs + 2, size - 5..size, 7..7] {
        let got = collect(store.read(&staging.blob, range.clone()).await.unwrap())
            .await
            .unwrap();
        assert!(
            got == data[range.start as usize..range.end as usize],
            "range {range:?}"
        );
    }
}

pub async fn writes_stay_inside_their_chunk(store: Arc<dyn BlobStore>) {
    let cs = store.min_chunk_size();
    let size = 2 * cs;
    let data = pattern(2, size as usize);
    let staging = store.begin(&BlobId::random(), Some(size)).await.unwrap();
    let second = write_chunk(
        store.as_ref(),
        &staging,
        chunk_ref(1, cs, size),
        &data[cs as usize..],
    )
    .await;
    // One byte too many for chunk 0, in one write and across writes.
    let mut w = store
        .open_chunk(&staging, chunk_ref(0, cs, size), 0)
        .await
        .unwrap();
    let err = w
        .write(vec![0xEE; cs as usize + 1].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfBounds), "{err:?}");
    drop(w);
    let mut w = store
        .open_chunk(&staging, chunk_ref(0, cs, size), 0)
        .await
        .unwrap();
    w.write(vec![0xEE; cs as usize - 1].into()).await.unwrap();
    let err = w.write(vec![0xEE; 2].into()).await.unwrap_err();
    assert!(matches!(err, StoreError::OutOfBounds), "{err:?}");
    drop(w);
    let first = write_chunk(
        store.as_ref(),
        &staging,
        chunk_ref(0, cs, size),
        &data[..cs as usize],
    )
    .await;
    store
        .commit(&staging, size, &[first, second])
        .await
        .unwrap();
    assert!(
        read_all(store.as_ref(), &staging.blob, size).await == data,
        "a neighbour chunk was overwritten"
    );
}

pub async fn appends_continue_a_chunk(store: Arc<dyn BlobStore>) {
    let cs = store.min_chunk_size();
    let data = pattern(3, (cs + MIB + 11) as usize);
    let staging = store.begin(&BlobId::random(), None).await.unwrap();
    let c0 = ChunkRef {
        index: 0,
        offset: 0,
        len: cs,
    };
    let mut w = store.open_chunk(&staging, c0, 0).await.unwrap();
    w.write(data[..1000].to_vec().into()).await.unwrap();
    w.sync().await.unwrap();
    let mut w = store.open_chunk(&staging, c0, 1000).await.unwrap();
    w.write(data[1000..cs as usize].to_vec().into())
        .await
        .unwrap();
    let r0 = ChunkRecord {
        index: 0,
        digests: vec![],
        receipt: w.finish().await.unwrap(),
    };
    let c1 = ChunkRef {
        index: 1,
        offset: cs,
        len: cs,
    };
    let mut w = store.open_chunk(&staging, c1, 0).await.unwrap();
    w.write(data[cs as usize..].to_vec().into()).await.unwrap();
    let r1 = ChunkRecord {
        index: 1,
        digests: vec![],
        receipt: w.finish().await.unwrap(),
    };
    let size = data.len() as u64;
    store.commit(&staging, size, &[r0, r1]).await.unwrap();
    assert!(read_all(store.as_ref(), &staging.blob, size).await == data);
}

pub async fn a_continued_chunk_keeps_only_what_it_continues(store: Arc<dyn BlobStore>) {
    // An append wrote and synced 5000 bytes but only 3000 were recorded (a
    // crash, a refused checksum): the next append continues at 3000, and
    // the bytes past it are replaced.
    let (first, second) = (pattern(4, 5000), pattern(12, 5000));
    let staging = store.begin(&BlobId::random(), Some(5000)).await.unwrap();
    let c0 = chunk_ref(0, store.min_chunk_size(), 5000);
    let mut w = store.open_chunk(&staging, c0, 0).await.unwrap();
    w.write(first.clone().into()).await.unwrap();
    w.sync().await.unwrap();
    let mut w = store.open_chunk(&staging, c0, 3000).await.unwrap();
    w.write(second[3000..].to_vec().into()).await.unwrap();
    let receipt = w.finish().await.unwrap();
    let record = ChunkRecord {
        index: 0,
        digests: vec![],
        receipt,
    };
    store.commit(&staging, 5000, &[record]).await.unwrap();
    let mut want = first[..3000].to_vec();
    want.extend_from_slice(&second[3000..]);
    assert!(read_all(store.as_ref(), &staging.blob, 5000).await == want);
}

pub async fn commit_is_idempotent(store: Arc<dyn BlobStore>) {
    let data = pattern(5, 70_000);
    let size = data.len() as u64;
    let staging = store.begin(&BlobId::random(), Some(size)).await.unwrap();
    let r = write_chunk(
        store.as_ref(),
        &staging,
        chunk_ref(0, store.min_chunk_size(), size),
        &data,
    )
    .await;
    store
        .commit(&staging, size, std::slice::from_ref(&r))
        .await
        .unwrap();
    store.commit(&staging, size, &[r]).await.unwrap();
    assert!(read_all(store.as_ref(), &staging.blob, size).await == data);
}

pub async fn abort_discards_staging(store: Arc<dyn BlobStore>) {
    let staging = store.begin(&BlobId::random(), Some(100)).await.unwrap();
    store.abort(&staging).await.unwrap();
    let err = store
        .open_chunk(&staging, chunk_ref(0, store.min_chunk_size(), 100), 0)
        .await
        .err()
        .expect("staging gone");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.abort(&staging).await.unwrap();
}

pub async fn delete_removes_a_blob(store: Arc<dyn BlobStore>) {
    let data = pattern(6, 1234);
    let size = data.len() as u64;
    let staging = store.begin(&BlobId::random(), Some(size)).await.unwrap();
    let r = write_chunk(
        store.as_ref(),
        &staging,
        chunk_ref(0, store.min_chunk_size(), size),
        &data,
    )
    .await;
    store.commit(&staging, size, &[r]).await.unwrap();
    store.delete(&staging.blob).await.unwrap();
    let err = store
        .read(&staging.blob, 0..size)
        .await
        .err()
        .expect("blob gone");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.delete(&staging.blob).await.unwrap();
}

pub async fn empty_blob(store: Arc<dyn BlobStore>) {
    let staging = store.begin(&BlobId::random(), Some(0)).await.unwrap();
    store.commit(&staging, 0, &[]).await.unwrap();
    assert!(read_all(store.as_ref(), &staging.blob, 0).await.is_empty());
}

pub async fn reading_what_is_not_there(store: Arc<dyn BlobStore>) {
    let err = store
        .read(&BlobId::random(), 0..1)
        .await
        .err()
        .expect("nothing stored");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let ghost = Staging {
        blob: BlobId::random(),
        handle: String::new(),
    };
    let err = store
        .open_chunk(&ghost, chunk_ref(0, store.min_chunk_size(), 10), 0)
        .await
        .err()
        .expect("nothing staged");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn put_blobs_stores_whole_blobs(store: Arc<dyn BlobStore>) {
    store.put_blobs(&[]).await.unwrap();
    let contents = [
        pattern(7, 16 * 1024),
        Vec::new(),
        pattern(8, 1),
        // Past 4 MiB and S3's 5 MiB part minimum: the default writes it
        // in several chunks.
        pattern(9, (5 * MIB + 3) as usize),
        pattern(7, 16 * 1024),
    ];
    let blobs: Vec<(BlobId, bytes::Bytes)> = contents
        .iter()
        .map(|c| (BlobId::random(), bytes::Bytes::copy_from_slice(c)))
        .collect();
    store.put_blobs(&blobs).await.unwrap();
    for ((id, _), data) in blobs.iter().zip(&contents) {
        let size = data.len() as u64;
        assert!(
            read_all(store.as_ref(), id, size).await == *data,
            "blob of {size} bytes differs"
        );
    }
    let (id, big) = (&blobs[3].0, &contents[3]);
    let range = 4 * MIB - 2..4 * MIB + 5;
    let got = collect(store.read(id, range.clone()).await.unwrap())
        .await
        .unwrap();
    assert!(got == big[range.start as usize..range.end as usize]);
}

pub async fn put_blobs_are_blobs_like_any(store: Arc<dyn BlobStore>) {
    let data = pattern(10, 3000);
    let blobs = [
        (BlobId::random(), bytes::Bytes::from(data.clone())),
        (BlobId::random(), bytes::Bytes::from(data.clone())),
    ];
    store.put_blobs(&blobs).await.unwrap();
    store.delete(&blobs[0].0).await.unwrap();
    let err = store
        .read(&blobs[0].0, 0..3000)
        .await
        .err()
        .expect("blob gone");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(read_all(store.as_ref(), &blobs[1].0, 3000).await == data);
    // Staged uploads beside them are not disturbed.
    let staging = store.begin(&BlobId::random(), Some(3000)).await.unwrap();
    let more = [(BlobId::random(), bytes::Bytes::from(pattern(11, 10)))];
    store.put_blobs(&more).await.unwrap();
    let r = write_chunk(
        store.as_ref(),
        &staging,
        chunk_ref(0, store.min_chunk_size(), 3000),
        &data,
    )
    .await;
    store.commit(&staging, 3000, &[r]).await.unwrap();
    assert!(read_all(store.as_ref(), &staging.blob, 3000).await == data);
}

pub async fn staged_uploads_are_listed_until_they_end(store: Arc<dyn BlobStore>) {
    let later = Timestamp::now().plus(std::time::Duration::from_secs(3600));
    let listed = async |before| -> Vec<BlobId> {
        let mut blobs: Vec<BlobId> = store
            .staged_before(before)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.blob)
            .collect();
        blobs.sort();
        blobs
    };
    let (done, left) = (
        store.begin(&BlobId::random(), Some(100)).await.unwrap(),
        store.begin(&BlobId::random(), Some(100)).await.unwrap(),
    );
    let mut both = vec![done.blob.clone(), left.blob.clone()];
    both.sort();
    assert_eq!(listed(later).await, both);
    assert!(listed(Timestamp(0)).await.is_empty(), "begun before 1970");
    let data = pattern(13, 100);
    let r = write_chunk(
        store.as_ref(),
        &done,
        chunk_ref(0, store.min_chunk_size(), 100),
        &data,
    )
    .await;
    store.commit(&done, 100, &[r]).await.unwrap();
    assert_eq!(listed(later).await, vec![left.blob.clone()]);
    // What the listing gives is what abort takes.
    let found = store.staged_before(later).await.unwrap();
    store.abort(&found[0]).await.unwrap();
    assert!(listed(later).await.is_empty());
    let err = store
        .open_chunk(&left, chunk_ref(0, store.min_chunk_size(), 100), 0)
        .await
        .err()
        .expect("staging gone");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn blobs_are_listed_by_age(store: Arc<dyn BlobStore>) {
    use futures::TryStreamExt;
    let started = Timestamp::now();
    let later = started.plus(std::time::Duration::from_secs(3600));
    let listed = async |before| -> Vec<BlobId> {
        let mut blobs: Vec<BlobId> = store.blobs_before(before).try_collect().await.unwrap();
        blobs.sort();
        blobs
    };
    assert!(listed(later).await.is_empty(), "a fresh store holds none");
    let data = pattern(14, 100);
    let committed = store.begin(&BlobId::random(), Some(100)).await.unwrap();
    let r = write_chunk(
        store.as_ref(),
        &committed,
        chunk_ref(0, store.min_chunk_size(), 100),
        &data,
    )
    .await;
    store.commit(&committed, 100, &[r]).await.unwrap();
    let empty = store.begin(&BlobId::random(), Some(0)).await.unwrap();
    store.commit(&empty, 0, &[]).await.unwrap();
    let put = [
        (BlobId::random(), bytes::Bytes::from(pattern(15, 10))),
        (BlobId::random(), bytes::Bytes::new()),
    ];
    store.put_blobs(&put).await.unwrap();
    // Staged uploads are not blobs.
    let staged = store.begin(&BlobId::random(), Some(100)).await.unwrap();

    let mut all = vec![
        committed.blob.clone(),
        empty.blob.clone(),
        put[0].0.clone(),
        put[1].0.clone(),
    ];
    all.sort();
    assert_eq!(listed(later).await, all);
    // Nothing was written before the test began (a minute of slack for
    // the clocks of a remote store).
    let earlier = Timestamp(started.0 - 60_000);
    assert!(listed(earlier).await.is_empty(), "written before the test");
    // What the listing gives is what delete takes; deleted blobs are gone
    // from it.
    let first = store
        .blobs_before(later)
        .try_next()
        .await
        .unwrap()
        .expect("a blob");
    store.delete(&first).await.unwrap();
    all.retain(|b| *b != first);
    assert_eq!(listed(later).await, all);
    store.abort(&staged).await.unwrap();
}
