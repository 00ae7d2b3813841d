//! Many small blobs made durable together ([`BlobStore::put_blobs`]).
//!
//! Stored one after another, each blob would wait in turn for its own
//! syncs: its part file's data, then its folders. Here every blob is first
//! written to a part file of its own with its writeback started at once;
//! then several threads wait for the `fdatasync`s side by side, which lets
//! the file system fold them into few journal commits and device flushes.
//! Each synced file is renamed into `blobs/`, and finally every fan-out
//! folder the batch touched, and `parts/`, is synced once. The guarantee is
//! the one of a commit: a blob exists under its name only with all its
//! bytes, and is durable when the call returns.
//!
//! [`BlobStore::put_blobs`]: tusk_core::store::BlobStore::put_blobs

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tusk_core::model::BlobId;
use tusk_core::store::StoreResult;

use super::{FsStore, blocking, private, start_writeback, sync_folder};

/// How many threads wait for a batch's syncs side by side. Waiting costs
/// no CPU: more threads than cores is the point, so that the file system
/// sees many syncs at once and commits them together.
const SYNC_THREADS: usize = 16;

/// One blob's way into the store.
#[derive(Clone)]
struct Put {
    part: PathBuf,
    dest: PathBuf,
    bytes: Bytes,
    fsync: bool,
}

/// Stores `blobs` under fresh ids; see the module doc. On error, removes
/// whatever it wrote of them.
pub(super) async fn put_blobs(store: &FsStore, blobs: &[(BlobId, Bytes)]) -> StoreResult<()> {
    let puts: Vec<Put> = blobs
        .iter()
        .map(|(id, bytes)| Put {
            part: store.part_path(id),
            dest: store.blob_path(id),
            bytes: bytes.clone(),
            fsync: store.fsync,
        })
        .collect();
    let mut folders: BTreeSet<PathBuf> = blobs.iter().map(|(id, _)| store.blob_dir(id)).collect();
    folders.insert(store.root.join("parts"));
    let fsync = store.fsync;
    let done = async {
        in_threads(puts.iter().cloned(), write_and_sync).await?;
        if fsync {
            in_threads(folders.into_iter(), |folders| {
                folders.iter().try_for_each(|dir| sync_folder(dir, true))
            })
            .await?;
        }
        Ok(())
    }
    .await;
    if done.is_err() {
        // Part files were removed by the threads that made them; what was
        // renamed into place goes here (ids are fresh: it is ours).
        blocking(move || {
            puts.iter().for_each(|put| remove_if_there(&put.dest));
            Ok(())
        })
        .await?;
    }
    done
}

/// Writes part files, starts their writeback, waits until their data is
/// durable, and renames each into place. On error, removes the part files
/// it made that are still there (what was renamed is the caller's).
fn write_and_sync(puts: &[Put]) -> io::Result<()> {
    // `puts[renamed..made]` have part files of ours.
    let (mut made, mut renamed) = (0, 0);
    let done = write_sync_rename(puts, &mut made, &mut renamed);
    if done.is_err() {
        for put in &puts[renamed..made] {
            remove_if_there(&put.part);
        }
    }
    done
}

fn write_sync_rename(puts: &[Put], made: &mut usize, renamed: &mut usize) -> io::Result<()> {
    let mut files = Vec::with_capacity(puts.len());
    for put in puts {
        let mut file = private::options()
            .write(true)
            .create_new(true)
            .open(&put.part)?;
        *made += 1;
        file.write_all(&put.bytes)?;
        if put.fsync {
            start_writeback(&file, 0, put.bytes.len() as u64)?;
        }
        files.push(file);
    }
    for (file, put) in files.into_iter().zip(puts) {
        if put.fsync {
            file.sync_data()?;
        }
        drop(file);
        std::fs::rename(&put.part, &put.dest)?;
        *renamed += 1;
    }
    Ok(())
}

/// Removes a file of a failed batch, if it is there.
fn remove_if_there(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a blob of a failed batch");
        }
        _ => {}
    }
}

/// Runs `work` over `items` split into up to [`SYNC_THREADS`] groups, each
/// on a blocking thread of its own, and waits for all of them (also after
/// one failed: nothing of the batch may still be running when it returns).
/// Returns the first error.
async fn in_threads<T: Send + 'static>(
    items: impl Iterator<Item = T>,
    work: fn(&[T]) -> io::Result<()>,
) -> StoreResult<()> {
    let items: Vec<T> = items.collect();
    let per_thread = items.len().div_ceil(SYNC_THREADS).max(1);
    let mut groups = Vec::new();
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        let group: Vec<T> = rest.by_ref().take(per_thread).collect();
        groups.push(blocking(move || work(&group)));
    }
    futures::future::join_all(groups)
        .await
        .into_iter()
        .collect()
}
