//! The S3 `BlobStore`: any S3-compatible object store (AWS S3, SeaweedFS,
//! MinIO, Garage, …), through `object_store`'s multipart API.
//!
//! Layout under the configured prefix:
//!
//! ```text
//! <prefix>blobs/<blob id>                    finished blobs
//! <prefix>staging/<blob id>/upload           marker of an upload in progress
//! <prefix>staging/<blob id>/<chunk>/<start>  bytes of a partly written chunk
//! <prefix>tusk-store                         written at start: the store works
//! ```
//!
//! An upload is one S3 multipart upload of the blob's key; chunk `i` is part
//! `i + 1`, its ETag is the receipt the catalog records, and completion is
//! CompleteMultipartUpload with those ETags: the blob is assembled by S3 in
//! place, nothing is copied. Any node holding the catalog's records can add
//! parts and complete.
//!
//! S3 cannot append to a part, so a chunk written in several appends (tus
//! PATCHes smaller than a part) is staged: each append that stops inside a
//! chunk stores the bytes it brought as one small *piece* object, and the
//! append that fills the chunk uploads the part from the pieces plus its
//! own bytes (see [`part`]). A part is held in memory while it is written,
//! taking memory as its bytes arrive; all parts in memory together stay
//! within [`S3Config::part_memory`], and a part that finds no room goes to
//! a temporary file until it is sent (see [`memory`]).

mod memory;
mod part;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use tusk_core::hash::BLOCK_SIZE;
use tusk_core::model::{BlobId, ChunkRecord, ChunkRef, Staging, Timestamp};
use tusk_core::store::{BlobIds, BlobStore, ByteStream, ChunkWriter, StoreError, StoreResult};

use memory::PartMemory;
use part::PartWriter;

/// The smallest chunk on S3: 8 MiB (S3 wants parts of at least 5 MiB but
/// the last; chunks are whole 4 MiB blocks).
pub const MIN_CHUNK_SIZE: u64 = 2 * BLOCK_SIZE;

/// How many small blobs [`BlobStore::put_blobs`] uploads at once.
const PUT_PARALLEL: usize = 16;

/// Where and how to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix of everything tusk stores (`""` for the bucket's root);
    /// a trailing `/` is added when missing.
    pub prefix: String,
    /// The endpoint URL for stores other than AWS (`http://127.0.0.1:8333`);
    /// `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style requests (`ENDPOINT/BUCKET/KEY`) instead of virtual-hosted
    /// ones (`BUCKET.ENDPOINT/KEY`); most self-hosted stores want this.
    pub path_style: bool,
    /// The most bytes of parts held in memory at once, over all chunks in
    /// flight; past it, parts wait in temporary files until they are sent.
    pub part_memory: u64,
}

/// The default of [`S3Config::part_memory`]: 1 GiB.
pub const DEFAULT_PART_MEMORY: u64 = 1 << 30;

impl S3Config {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse_url(url: &str) -> Result<(String, String), String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3:// address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
            ));
        }
        if prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(format!("the prefix {prefix:?} has a '.' or '..' segment"));
        }
        Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
    }
}

/// Blobs and staged uploads in an S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) s3: AmazonS3,
    /// `""` or `"some/prefix/"`.
    prefix: String,
    /// Room for parts held in memory.
    pub(crate) memory: PartMemory,
}

/// Turns an `object_store` error into the store's: "not found" stays
/// first-class; anything else is the backend's.
pub(crate) fn store_error(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound,
        e => StoreError::Backend(e.to_string()),
    }
}

/// Not found is what was wanted (deleting, aborting).
fn gone_is_fine(r: object_store::Result<()>) -> StoreResult<()> {
    match r {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        other => other.map_err(store_error),
    }
}

impl S3Store {
    /// Connects to the bucket and proves the store works: writes, reads back
    /// and keeps a small marker object. Credentials come from the usual
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (or a web identity, an
    /// instance profile, …) as the AWS SDKs find them.
    pub async fn open(config: &S3Config) -> StoreResult<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 4,
                retry_timeout: Duration::from_secs(30),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    // A part of up to 1 GiB over a slow link.
                    .with_timeout(Duration::from_secs(600)),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let s3 = builder.build().map_err(store_error)?;
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let store = S3Store {
            inner: Arc::new(Inner {
                s3,
                prefix,
                memory: PartMemory::new(config.part_memory),
            }),
        };
        store.prove().await?;
        Ok(store)
    }

    /// Bytes of parts held in memory right now.
    pub fn part_memory_in_use(&self) -> u64 {
        self.inner.memory.in_use()
    }

    /// Writes the marker object and reads it back.
    async fn prove(&self) -> StoreResult<()> {
        let marker = self.inner.marker();
        let text = Bytes::from_static(b"tusk blob store: blobs/ and staging/ live beside this\n");
        self.inner
            .s3
            .put(&marker, text.clone().into())
            .await
            .map_err(store_error)?;
        let back = self
            .inner
            .s3
            .get(&marker)
            .await
            .map_err(store_error)?
            .bytes()
            .await
            .map_err(store_error)?;
        if back != text {
            return Err(StoreError::Backend(
                "the marker object read back differs from what was written".into(),
            ));
        }
        Ok(())
    }
}

impl Inner {
    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn marker(&self) -> Path {
        self.key("tusk-store")
    }

    pub(crate) fn blob(&self, blob: &BlobId) -> Path {
        self.key(&format!("blobs/{blob}"))
    }

    pub(crate) fn staging_dir(&self, blob: &BlobId) -> Path {
        self.key(&format!("staging/{blob}"))
    }

    fn upload_marker(&self, blob: &BlobId) -> Path {
        self.key(&format!("staging/{blob}/upload"))
    }

    /// Deletes every staged object of an upload: its marker and pieces.
    async fn clear_staging(&self, blob: &BlobId) -> StoreResult<()> {
        let dir = self.staging_dir(blob);
        let keys: Vec<Path> = self
            .s3
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(store_error)?;
        let deleted: Vec<_> = self
            .s3
            .delete_stream(futures::stream::iter(keys.into_iter().map(Ok)).boxed())
            .collect()
            .await;
        for d in deleted {
            if let Err(e) = d
                && !matches!(e, object_store::Error::NotFound { .. })
            {
                return Err(store_error(e));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn min_chunk_size(&self) -> u64 {
        MIN_CHUNK_SIZE
    }

    async fn begin(&self, blob: &BlobId, _size: Option<u64>) -> StoreResult<Staging> {
        let s3 = &self.inner.s3;
        let id = s3
            .create_multipart(&self.inner.blob(blob))
            .await
            .map_err(store_error)?;
        // The marker names the multipart upload, so one abandoned by a
        // crash before the catalog knew of it can still be found and
        // aborted by listing `staging/`.
        let marker = self.inner.upload_marker(blob);
        if let Err(e) = s3.put(&marker, id.clone().into()).await {
            let _ = s3.abort_multipart(&self.inner.blob(blob), &id).await;
            return Err(store_error(e));
        }
        Ok(Staging {
            blob: blob.clone(),
            handle: id,
        })
    }

    async fn open_chunk(
        &self,
        staging: &Staging,
        chunk: ChunkRef,
        start: u64,
    ) -> StoreResult<Box<dyn ChunkWriter>> {
        if staging.handle.is_empty() {
            return Err(StoreError::NotFound);
        }
        // The upload is still staged: not aborted, not committed.
        self.inner
            .s3
            .head(&self.inner.upload_marker(&staging.blob))
            .await
            .map_err(store_error)?;
        if start > chunk.len {
            return Err(StoreError::OutOfBounds);
        }
        // Memory is taken as bytes arrive, not here.
        Ok(Box::new(PartWriter::new(
            self.inner.clone(),
            staging.clone(),
            chunk,
            start,
        )))
    }

    async fn commit(
        &self,
        staging: &Staging,
        size: u64,
        chunks: &[ChunkRecord],
    ) -> StoreResult<()> {
        let s3 = &self.inner.s3;
        let path = self.inner.blob(&staging.blob);
        if let Some((at, c)) = chunks
            .iter()
            .enumerate()
            .find(|(at, c)| c.index as usize != *at)
        {
            return Err(StoreError::Backend(format!(
                "chunk {} listed at position {at}: chunks must be given in order, all of them",
                c.index
            )));
        }
        let completed = if chunks.is_empty() {
            // S3 completes no upload without parts: store the empty blob
            // directly.
            gone_is_fine(s3.abort_multipart(&path, &staging.handle).await)?;
            s3.put(&path, PutPayload::default())
                .await
                .map(|_| ())
                .map_err(store_error)
        } else {
            let parts = chunks
                .iter()
                .map(|c| PartId {
                    content_id: c.receipt.clone(),
                })
                .collect();
            s3.complete_multipart(&path, &staging.handle, parts)
                .await
                .map(|_| ())
                .map_err(store_error)
        };
        // A repeated commit finds the upload gone: fine if the blob is there.
        match completed {
            Ok(()) => {}
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let meta = s3.head(&path).await.map_err(store_error)?;
        if meta.size != size {
            return Err(StoreError::Backend(format!(
                "blob {} holds {} bytes after completion, {size} expected",
                staging.blob, meta.size
            )));
        }
        if let Err(e) = self.inner.clear_staging(&staging.blob).await {
            tracing::warn!(blob = %staging.blob, error = %e, "could not remove the staged pieces of a committed upload");
        }
        Ok(())
    }

    async fn abort(&self, staging: &Staging) -> StoreResult<()> {
        if !staging.handle.is_empty() {
            gone_is_fine(
                self.inner
                    .s3
                    .abort_multipart(&self.inner.blob(&staging.blob), &staging.handle)
                    .await,
            )?;
        }
        self.inner.clear_staging(&staging.blob).await
    }

    /// Uploads whose marker was written (at `begin`) before `before`, with
    /// the multipart upload id the marker names.
    async fn staged_before(&self, before: Timestamp) -> StoreResult<Vec<Staging>> {
        let s3 = &self.inner.s3;
        let listed: Vec<_> = s3
            .list(Some(&self.inner.key("staging")))
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut staged = Vec::new();
        for meta in listed {
            if meta.location.filename() != Some("upload")
                || meta.last_modified.timestamp_millis() >= before.0
            {
                continue;
            }
            let blob = meta
                .location
                .parts()
                .nth_back(1)
                .and_then(|p| BlobId::parse(p.as_ref()));
            let Some(blob) = blob else { continue };
            let handle = match s3.get(&meta.location).await {
                Ok(got) => got.bytes().await.map_err(store_error)?,
                // Aborted meanwhile.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            };
            staged.push(Staging {
                blob,
                handle: String::from_utf8_lossy(&handle).into_owned(),
            });
        }
        Ok(staged)
    }

    /// Objects under `blobs/` whose last-modified date is before `before`.
    fn blobs_before(&self, before: Timestamp) -> BlobIds {
        let inner = self.inner.clone();
        let listed = inner.s3.list(Some(&inner.key("blobs")));
        listed
            .map_err(store_error)
            .try_filter_map(move |meta| {
                let old = meta.last_modified.timestamp_millis() < before.0;
                let blob = meta.location.filename().and_then(BlobId::parse);
                futures::future::ready(Ok(blob.filter(|_| old)))
            })
            .boxed()
    }

    async fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreResult<ByteStream> {
        let path = self.inner.blob(blob);
        if range.is_empty() {
            // S3 has no empty range: just make sure the blob is there.
            self.inner.s3.head(&path).await.map_err(store_error)?;
            return Ok(futures::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let got = self
            .inner
            .s3
            .get_opts(&path, options)
            .await
            .map_err(store_error)?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    async fn delete(&self, blob: &BlobId) -> StoreResult<()> {
        gone_is_fine(self.inner.s3.delete(&self.inner.blob(blob)).await)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner
            .s3
            .head(&self.inner.marker())
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// One plain PUT per blob, several at once: a PUT is atomic and durable
    /// when S3 answers it.
    async fn put_blobs(&self, blobs: &[(BlobId, Bytes)]) -> StoreResult<()> {
        let puts: Vec<_> = blobs
            .iter()
            .map(|(id, bytes)| {
                let (inner, path) = (self.inner.clone(), self.inner.blob(id));
                let payload = PutPayload::from(bytes.clone());
                async move { inner.s3.put(&path, payload).await.map(|_| ()) }
            })
            .collect();
        let results: Vec<object_store::Result<()>> = futures::stream::iter(puts)
            .buffer_unordered(PUT_PARALLEL)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            for (id, _) in blobs {
                if let Err(cleanup) = self.delete(id).await {
                    tracing::warn!(blob = %id, error = %cleanup, "could not remove a blob of a failed batch");
                }
            }
            return Err(store_error(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            S3Config::parse_url("s3://uploads").unwrap(),
            ("uploads".into(), "".into())
        );
        assert_eq!(
            S3Config::parse_url("s3://my-bucket/tusk/prod/").unwrap(),
            ("my-bucket".into(), "tusk/prod".into())
        );
        for bad in [
            "uploads",
            "s3://",
            "s3://UP",
            "s3://a",
            "s3://ok-bucket/a/../b",
        ] {
            assert!(S3Config::parse_url(bad).is_err(), "{bad}");
        }
    }
}
