//! Creating uploads: the check by content hash that starts the flow.
//!
//! For a chunked upload the client names the content by its hash first. If
//! the owner has a file on verified content with that hash, the file is
//! recorded at once (instant upload); content of other owners needs a
//! proof of possession (see `proof`). If the same owner has an unfinished
//! upload of that same file (hash, size and name), it is handed back to
//! resume. Otherwise a new
//! upload starts. Append uploads (tus, forms) do not know their hash in
//! advance and always start new.

use crate::catalog::CatalogError;
use crate::error::{Error, Result};
use crate::model::{
    Blob, BlobId, Claims, Concat, FileId, FileRecord, NewFile, Owner, Timestamp, Upload, UploadId,
    UploadMode,
};
use crate::name;

use super::admission::Admit;
use super::{UploadService, pick_chunk_size};

/// A chunked upload as a client describes it.
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub name: String,
    pub size: u64,
    /// Must carry `hash`; `md5`/`sha256` are optional.
    pub claims: Claims,
    pub mime: Option<String>,
    pub chunk_size: Option<u64>,
    /// The id of the file an instant upload records, derived from the
    /// request's idempotency key (see `replay`); `None` for a fresh one.
    pub file_id: Option<FileId>,
}

/// An append upload as a client describes it.
#[derive(Clone, Debug)]
pub struct NewAppendUpload {
    pub name: String,
    pub mime: Option<String>,
    /// `None` while the length is deferred.
    pub size: Option<u64>,
    /// Kept verbatim with the upload (tus `Upload-Metadata`).
    pub meta: Option<String>,
    /// `None` or `Partial`; final uploads are made by `create_final`.
    pub concat: Concat,
}

/// An upload about to be recorded, before it has an id and staging.
pub(super) struct Draft {
    pub name: String,
    pub mime: String,
    pub size: Option<u64>,
    pub claims: Claims,
    pub chunk_size: u64,
    pub mode: UploadMode,
    pub concat: Concat,
    pub meta: Option<String>,
}

/// What the check found.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The content was stored already: the file is recorded, send nothing.
    Instant(FileRecord),
    /// An unfinished upload of this file exists: send its missing chunks.
    Resumed(Upload),
    /// A new upload.
    Created(Upload),
}

impl UploadService {
    /// Checks content by hash and starts, resumes or skips its upload.
    pub async fn create(&self, owner: &Owner, req: NewUpload) -> Result<CreateOutcome> {
        let name = name::normalize(&req.name)?;
        let mime = self.mime_for(&name, req.mime.as_deref())?;
        self.check_size(req.size)?;
        let chunk_size = pick_chunk_size(req.size, req.chunk_size, self.store.min_chunk_size())?;
        let hash = req.claims.hash.expect("a chunked upload names its hash");

        if let Some(blob) = self.catalog.find_owned_blob(owner, &hash).await?
            && let Some(file) = self.instant(owner, &name, &mime, &req, blob).await?
        {
            return Ok(CreateOutcome::Instant(file));
        }
        // One check at a time per owner and content, so that two clients
        // racing to start the same file end up on one upload.
        let _guard = self
            .catalog
            .lock(&format!("create:{}:{}", owner.0, hash.to_hex()))
            .await?;
        if let Some(upload) = self
            .catalog
            .find_resumable(owner, &hash, req.size, &name)
            .await?
            && upload.claims == req.claims
            && !upload.is_expired(Timestamp::now())
        {
            return Ok(CreateOutcome::Resumed(upload));
        }
        let upload = self
            .start(
                owner,
                Draft {
                    name,
                    mime,
                    size: Some(req.size),
                    claims: req.claims,
                    chunk_size,
                    mode: UploadMode::Chunks,
                    concat: Concat::None,
                    meta: None,
                },
            )
            .await?;
        Ok(CreateOutcome::Created(upload))
    }

    /// Starts an append upload (tus creation, form posts).
    pub async fn create_append(&self, owner: &Owner, req: NewAppendUpload) -> Result<Upload> {
        if matches!(req.concat, Concat::Final(_)) {
            // Final uploads are made by `create_final`, from their parts.
            return Err(Error::WrongMode);
        }
        let name = name::normalize(&req.name)?;
        let mime = self.mime_for(&name, req.mime.as_deref())?;
        if let Some(size) = req.size {
            self.check_size(size)?;
        }
        let draft = Draft {
            name,
            mime,
            size: req.size,
            claims: Claims::default(),
            chunk_size: self.append_chunk_size(req.size)?,
            mode: UploadMode::Append,
            concat: req.concat,
            meta: req.meta,
        };
        self.start(owner, draft).await
    }

    /// The chunk size of an append upload. An unknown length may grow up
    /// to the limit: chunks are sized for that.
    pub(super) fn append_chunk_size(&self, size: Option<u64>) -> Result<u64> {
        pick_chunk_size(
            size.unwrap_or(self.limits.max_file_size),
            None,
            self.store.min_chunk_size(),
        )
    }

    pub(super) async fn start(&self, owner: &Owner, draft: Draft) -> Result<Upload> {
        let _admitted = self
            .admit(owner, Admit::Upload(draft.size.unwrap_or(0)))
            .await?;
        let staging = self.store.begin(&BlobId::random(), draft.size).await?;
        let now = Timestamp::now();
        let upload = Upload {
            id: UploadId::random(),
            owner: owner.clone(),
            name: draft.name,
            mime: draft.mime,
            size: draft.size,
            claims: draft.claims,
            chunk_size: draft.chunk_size,
            mode: draft.mode,
            staging,
            offset: 0,
            tail: None,
            file: None,
            concat: draft.concat,
            meta: draft.meta,
            created_at: now,
            expires_at: self.expiry(),
            received: Vec::new(),
        };
        if let Err(e) = self.catalog.insert_upload(&upload).await {
            let _ = self.store.abort(&upload.staging).await;
            return Err(e.into());
        }
        Ok(upload)
    }

    /// Records a file on stored content after checking the other claims
    /// against it. `None` if the blob was freed in the meantime.
    async fn instant(
        &self,
        owner: &Owner,
        name: &str,
        mime: &str,
        req: &NewUpload,
        blob: Blob,
    ) -> Result<Option<FileRecord>> {
        if blob.size != req.size {
            return Err(Error::HashMismatch("size"));
        }
        match self.verify_claims(&blob, &req.claims).await {
            Ok(_) => {}
            // Freed while it was read: upload it like new content.
            Err(Error::Store(crate::store::StoreError::NotFound)) => return Ok(None),
            Err(e) => return Err(e),
        }
        // A repeat of a check that recorded the file already.
        let keyed: Vec<_> = req
            .file_id
            .iter()
            .map(|id| (id.clone(), name, blob.hash))
            .collect();
        if let Some(mut done) = self.recorded_already(owner, &keyed).await? {
            return Ok(done.pop());
        }
        let file = NewFile {
            id: req.file_id.clone().unwrap_or_else(FileId::random),
            owner: owner.clone(),
            name: name.to_owned(),
            mime: mime.to_owned(),
            created_at: Timestamp::now(),
        };
        let _admitted = self.admit(owner, Admit::File(blob.size)).await?;
        match self.catalog.insert_file(&file, &blob.id).await {
            Ok(record) => Ok(Some(record)),
            Err(CatalogError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The media type: as given (if it is one), else guessed from the name.
    pub(super) fn mime_for(&self, name: &str, given: Option<&str>) -> Result<String> {
        match given.map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => m
                .parse::<mime_guess::mime::Mime>()
                .map(|m| m.to_string())
                .map_err(|_| Error::InvalidMime),
            None => Ok(mime_guess::from_path(name)
                .first_or_octet_stream()
                .essence_str()
                .to_owned()),
        }
    }
}
