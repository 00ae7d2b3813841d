//! The `Catalog` trait: what is known about uploads, blobs and files.
//!
//! Every state change is one transaction. The catalog is also where
//! exclusivity lives ([`Catalog::lock`]), so that several server nodes
//! sharing one catalog agree on who writes a chunk or completes an upload.
//!
//! Who validates what: the core checks every rule (sizes, offsets, claims,
//! ownership) before calling a catalog method; a catalog stores what it is
//! given and enforces only what must be atomic — compare-and-set of an
//! append offset, reference counts, one blob per content hash.

use async_trait::async_trait;

use crate::hash::{ContentHash, Digest32};
use crate::model::{
    Account, Blob, BlobId, ChunkRecord, Claims, EndReason, EndedUpload, FileId, FilePage,
    FileQuery, FileRecord, NewFile, NewToken, Owner, Revoke, Timestamp, TokenRecord, Upload,
    UploadId, Usage,
};

/// The most candidates [`Catalog::find_resumable`] hands out.
pub const RESUMABLE_CANDIDATES: u32 = 8;

/// Errors of a catalog backend.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The record a change refers to does not exist (any more).
    #[error("not found in the catalog")]
    NotFound,
    /// An append's expected offset no longer matches.
    #[error("the upload offset changed")]
    OffsetConflict,
    /// A listing cursor this catalog did not hand out.
    #[error("unknown listing cursor")]
    InvalidCursor,
    #[error("catalog: {0}")]
    Backend(String),
}

pub type CatalogResult<T> = Result<T, CatalogError>;

/// Held while some work is exclusive; dropping it releases the lock.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LockGuard {
    pub fn new(inner: impl Send + Sync + 'static) -> Self {
        LockGuard(Box::new(inner))
    }
}

/// How a completed upload ended up stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    pub file: FileRecord,
    /// True when the upload's own blob became the stored content; false when
    /// content with the same hash was already stored (the upload's own blob
    /// is then redundant and must be deleted from the store).
    pub kept_own_blob: bool,
}

/// A committed, verified blob about to enter the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBlob {
    pub blob: Blob,
    pub created_at: Timestamp,
}

/// Files to record together, each on content written for the batch or
/// already stored ([`Catalog::insert_files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFiles {
    /// Content written for these files: committed to the store, verified,
    /// not yet in the catalog.
    pub blobs: Vec<NewBlob>,
    /// The files in order, each with the content hash of its bytes: the
    /// hash of one of `blobs` or of a blob already stored.
    pub files: Vec<(NewFile, ContentHash)>,
}

/// What [`Catalog::insert_files`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertedFiles {
    /// The new file records, in the order given.
    pub files: Vec<FileRecord>,
    /// The given new blobs the catalog did not keep: content with the same
    /// hash was stored already (or came earlier in the same batch), or no
    /// file uses them. They are redundant copies to delete from the store.
    pub redundant: Vec<BlobId>,
}

/// What deleting a file left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedFile {
    /// The blob no file references any more: already forgotten by the
    /// catalog, it must be deleted from the store.
    pub freed_blob: Option<BlobId>,
}

/// The catalog of uploads, blobs and files.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    // ----- uploads -------------------------------------------------------

    /// Records a new upload (its `received` list is ignored: it has none),
    /// with its metadata and, for a final upload, its list of parts.
    async fn insert_upload(&self, upload: &Upload) -> CatalogResult<()>;

    /// The upload with its received chunks, completed or not.
    async fn get_upload(&self, id: &UploadId) -> CatalogResult<Option<Upload>>;

    /// Unfinished chunked uploads of `owner` with this claimed hash and
    /// size, whatever their names and other claims, newest first, at most
    /// [`RESUMABLE_CANDIDATES`]: the service picks one whose claims agree.
    /// Expired ones may be among them; the service checks.
    async fn find_resumable(
        &self,
        owner: &Owner,
        hash: &ContentHash,
        size: u64,
    ) -> CatalogResult<Vec<Upload>>;

    /// Gives an unfinished upload a new name and media type and replaces its
    /// claims (a resume under another name, or with a claim the first check
    /// did not make; the service has checked that the claims agree).
    /// `NotFound` if it is gone or finished.
    async fn relabel_upload(
        &self,
        id: &UploadId,
        name: &str,
        mime: &str,
        claims: &Claims,
    ) -> CatalogResult<()>;

    /// Moves an unfinished upload's expiry to `expires_at` (a chunk about
    /// to be written, a part of a final upload appended to). `NotFound` if
    /// it is gone or finished.
    async fn touch_upload(&self, id: &UploadId, expires_at: Timestamp) -> CatalogResult<()>;

    /// Counts an upload whose length is deferred at `to` bytes, or at its
    /// offset if larger (see [`Catalog::usage`]), until its length is set:
    /// what an append reserves before writing, and gives back when it ends.
    /// Replaces what was reserved before. `NotFound` if it is gone or
    /// finished.
    async fn reserve_upload(&self, id: &UploadId, to: u64) -> CatalogResult<()>;

    /// Records a received chunk and moves the expiry. Recording a chunk
    /// already recorded changes nothing. `NotFound` if the upload is gone.
    async fn record_chunk(
        &self,
        id: &UploadId,
        chunk: &ChunkRecord,
        expires_at: Timestamp,
    ) -> CatalogResult<()>;

    /// Append mode: moves the offset from `from` to `to`, records the chunks
    /// completed on the way and the saved hasher state of the partial chunk
    /// at `to`, and moves the expiry. `OffsetConflict` if the stored offset
    /// is not `from`.
    async fn record_append(
        &self,
        id: &UploadId,
        from: u64,
        to: u64,
        chunks: &[ChunkRecord],
        tail: Option<&[u8]>,
        expires_at: Timestamp,
    ) -> CatalogResult<()>;

    /// Sets the length of an upload whose length was deferred.
    async fn set_upload_size(&self, id: &UploadId, size: u64) -> CatalogResult<()>;

    /// The recorded chunks of an upload, by ascending index.
    async fn chunks(&self, id: &UploadId) -> CatalogResult<Vec<ChunkRecord>>;

    /// Forgets an upload and its chunks. Returns whether it existed.
    async fn delete_upload(&self, id: &UploadId) -> CatalogResult<bool>;

    /// Forgets an upload and its chunks, and remembers in the same
    /// transaction that it ended, why and when. Returns whether it existed.
    async fn end_upload(
        &self,
        id: &UploadId,
        reason: EndReason,
        at: Timestamp,
    ) -> CatalogResult<bool>;

    /// What is remembered of an upload that ended, if anything.
    async fn ended_upload(&self, id: &UploadId) -> CatalogResult<Option<EndedUpload>>;

    /// Up to `limit` unfinished uploads (final uploads too) whose expiry is
    /// at or before `now`, soonest first.
    async fn expired_uploads(&self, now: Timestamp, limit: u32) -> CatalogResult<Vec<UploadId>>;

    /// Whether an upload (of any state) stages its bytes as `blob`.
    async fn staging_in_use(&self, blob: &BlobId) -> CatalogResult<bool>;

    /// Which of `blobs` a record still owns, in no particular order: a
    /// stored blob (one that [`Catalog::find_blob`] could find), or the
    /// blob an unfinished upload stages its bytes as — committed already
    /// when a finished partial upload waits for its final upload, or when
    /// a node stopped between an upload's store commit and its completion.
    /// What no record owns is an orphan the sweeper deletes from the store:
    /// the blob of a completed upload whose content was stored already, a
    /// blob freed by deleting its last file, or one written for small
    /// files that were never recorded. Each blob's answer comes from one
    /// consistent view of the catalog, so a completion moving a blob from
    /// its upload to the stored blobs (one transaction) never makes it look
    /// unowned.
    async fn blobs_in_use(&self, blobs: &[BlobId]) -> CatalogResult<Vec<BlobId>>;

    /// Unfinished final uploads that list `part` among their parts.
    async fn finals_with_part(&self, part: &UploadId) -> CatalogResult<Vec<UploadId>>;

    // ----- blobs and files -----------------------------------------------

    /// The verified blob with this content hash, if stored.
    async fn find_blob(&self, hash: &ContentHash) -> CatalogResult<Option<Blob>>;

    /// The verified blob with this content hash if `owner` has a file on
    /// it: what an instant upload within one owner may use.
    async fn find_owned_blob(
        &self,
        owner: &Owner,
        hash: &ContentHash,
    ) -> CatalogResult<Option<Blob>>;

    /// Adds whole-file checksums verified later (after an instant upload
    /// claimed them).
    async fn set_blob_checksums(
        &self,
        blob: &BlobId,
        md5: Option<[u8; 16]>,
        sha256: Option<Digest32>,
    ) -> CatalogResult<()>;

    /// Records a file referencing an existing blob (an instant upload).
    /// `NotFound` if the blob was freed meanwhile.
    async fn insert_file(&self, file: &NewFile, blob: &BlobId) -> CatalogResult<FileRecord>;

    /// In one transaction: stores `blob` unless a blob with the same hash
    /// exists (then references that one), records `file`, and marks the
    /// upload completed with that file. `NotFound` if the upload is gone.
    async fn complete_upload(
        &self,
        upload: &UploadId,
        blob: &NewBlob,
        file: &NewFile,
    ) -> CatalogResult<Completed>;

    /// In one transaction, records many files at once (small files posted
    /// together): stores each of `batch.blobs` unless a blob with the same
    /// hash is stored already or earlier in the batch (then that one stays,
    /// gaining the verified checksums of the redundant one), then records
    /// each file on the blob with its hash, counting the reference. A new
    /// blob no file uses is not kept. Either every file is recorded or
    /// none: `NotFound`, changing nothing, if a file's hash names no blob
    /// (the content was freed meanwhile). The new blobs not kept are
    /// returned for the caller to delete from the store.
    async fn insert_files(&self, batch: &NewFiles) -> CatalogResult<InsertedFiles>;

    async fn get_file(&self, id: &FileId) -> CatalogResult<Option<FileRecord>>;

    /// Files of an owner, newest first.
    async fn list_files(&self, query: &FileQuery) -> CatalogResult<FilePage>;

    /// Deletes a file record of `owner`. `None` if there was no such file.
    async fn delete_file(&self, owner: &Owner, id: &FileId) -> CatalogResult<Option<DeletedFile>>;

    /// Makes a file of `owner` public or private again; the file as it is
    /// now, `None` if `owner` has no such file.
    async fn set_file_public(
        &self,
        owner: &Owner,
        id: &FileId,
        public: bool,
    ) -> CatalogResult<Option<FileRecord>>;

    // ----- access --------------------------------------------------------

    /// Records a token, creating its account if needed (see [`NewToken`]
    /// for what changes on an existing one).
    async fn insert_token(&self, token: &NewToken) -> CatalogResult<()>;

    /// The token whose SHA-256 this is, revoked or not.
    async fn find_token(&self, secret_hash: &Digest32) -> CatalogResult<Option<TokenRecord>>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> CatalogResult<Vec<TokenRecord>>;

    /// Revokes tokens not revoked yet; how many.
    async fn revoke_tokens(&self, which: &Revoke, at: Timestamp) -> CatalogResult<u32>;

    /// Whether any token was ever recorded (revoked ones too: revoking the
    /// last token does not open a server up).
    async fn has_tokens(&self) -> CatalogResult<bool>;

    /// The account of `owner`, if it has one.
    async fn account(&self, owner: &Owner) -> CatalogResult<Option<Account>>;

    /// What `owner` holds. `stored` is only added up when `with_stored`
    /// (it reads every file of the owner); unfinished uploads expired at
    /// `now` do not count. An unfinished upload counts at its length, or
    /// while that is deferred at the larger of its offset and what it
    /// reserved ([`Catalog::reserve_upload`]); a final upload counts in
    /// `uploads`, and in `uploading` at what its length exceeds the sizes
    /// of its distinct unexpired parts (which count on their own).
    async fn usage(&self, owner: &Owner, now: Timestamp, with_stored: bool)
    -> CatalogResult<Usage>;

    /// The key that signs download links, shared by every node: the stored
    /// one, or `fresh` when there is none yet (then stored).
    async fn signing_key(&self, fresh: &[u8; 32]) -> CatalogResult<[u8; 32]>;

    // ----- health --------------------------------------------------------

    /// Answers once the catalog can serve requests (its database reachable
    /// and answering); a load balancer's readiness check.
    async fn ping(&self) -> CatalogResult<()>;

    // ----- exclusivity ---------------------------------------------------

    /// Waits until no one else holds `key`, then holds it until the guard
    /// is dropped. Exclusive across every process sharing this catalog.
    async fn lock(&self, key: &str) -> CatalogResult<LockGuard>;

    /// Holds `key` if no one else does; `None` at once if someone does.
    async fn try_lock(&self, key: &str) -> CatalogResult<Option<LockGuard>>;
}
