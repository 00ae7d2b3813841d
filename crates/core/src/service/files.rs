//! Files: label and store whole streams, list, read and delete.

use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{Concat, FileId, FilePage, FileQuery, FileRecord, Owner};
use crate::name;
use crate::store::{ByteStream, StoreError};

use super::UploadService;
use super::append::{AppendOutcome, Checks};
use super::create::NewAppendUpload;

/// A file opened for reading.
pub struct Download {
    pub file: FileRecord,
    /// The bytes served: the whole file or the asked range.
    pub range: Range<u64>,
    pub body: ByteStream,
}

/// The name and media type of a whole file, checked as every door checks
/// them: the name normalised, the media type kept as given (if it is one)
/// or guessed from the name. Made by [`UploadService::label`] only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    name: String,
    mime: String,
}

impl Label {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mime(&self) -> &str {
        &self.mime
    }

    pub(super) fn into_parts(self) -> (String, String) {
        (self.name, self.mime)
    }
}

impl UploadService {
    /// Checks the name and media type a client gave a whole file, so that
    /// a door can refuse a bad one before reading its bytes.
    pub fn label(&self, name: &str, mime: Option<&str>) -> Result<Label> {
        let name = name::normalize(name)?;
        let mime = self.mime_for(&name, mime)?;
        Ok(Label { name, mime })
    }

    /// Stores a whole stream of unknown length as a file (form posts): it is
    /// hashed on the way in and deduplicated like any upload. On any error
    /// nothing of it remains.
    pub async fn store_stream(
        self: &Arc<Self>,
        owner: &Owner,
        label: &Label,
        body: ByteStream,
    ) -> Result<FileRecord> {
        let upload = self
            .create_append(
                owner,
                NewAppendUpload {
                    // Checked already; checking again changes nothing.
                    name: label.name.clone(),
                    mime: Some(label.mime.clone()),
                    size: None,
                    meta: None,
                    concat: Concat::None,
                },
            )
            .await?;
        let stored = async {
            let size = match self
                .append(owner, &upload.id, 0, Checks::None, body)
                .await?
            {
                AppendOutcome::Done(a) => a.upload.offset,
                AppendOutcome::Interrupted { error, .. } => return Err(error),
            };
            self.declare_length(owner, &upload.id, size).await?;
            self.complete(owner, &upload.id).await
        }
        .await;
        match stored {
            Ok(file) => {
                // The upload has done its job; the file stands on its own.
                if let Err(e) = self.catalog.delete_upload(&upload.id).await {
                    tracing::warn!(upload = %upload.id, error = %e, "could not forget a finished form upload");
                }
                Ok(file)
            }
            Err(e) => {
                if let Err(cleanup) = self.discard(&upload, None).await {
                    tracing::warn!(upload = %upload.id, error = %cleanup, "could not discard a failed form upload");
                }
                Err(e)
            }
        }
    }

    pub async fn get_file(&self, owner: &Owner, id: &FileId) -> Result<FileRecord> {
        match self.catalog.get_file(id).await? {
            Some(f) if &f.owner == owner => Ok(f),
            _ => Err(Error::FileNotFound),
        }
    }

    /// A file for a download: `reader`'s own, a public one, or any one when
    /// the request carries a valid signed link (`signed`). Anything else is
    /// as good as missing.
    pub async fn readable_file(
        &self,
        reader: Option<&Owner>,
        id: &FileId,
        signed: bool,
    ) -> Result<FileRecord> {
        match self.catalog.get_file(id).await? {
            Some(f) if signed || f.public || reader == Some(&f.owner) => Ok(f),
            _ => Err(Error::FileNotFound),
        }
    }

    /// Makes a file of `owner` downloadable by anyone (or not any more).
    pub async fn set_public(&self, owner: &Owner, id: &FileId, public: bool) -> Result<FileRecord> {
        self.catalog
            .set_file_public(owner, id, public)
            .await?
            .ok_or(Error::FileNotFound)
    }

    pub async fn list_files(&self, query: &FileQuery) -> Result<FilePage> {
        Ok(self.catalog.list_files(query).await?)
    }

    /// Deletes a file; its blob goes when no file uses it any more.
    pub async fn delete_file(&self, owner: &Owner, id: &FileId) -> Result<()> {
        let deleted = self
            .catalog
            .delete_file(owner, id)
            .await?
            .ok_or(Error::FileNotFound)?;
        if let Some(blob) = deleted.freed_blob
            && let Err(e) = self.store.delete(&blob).await
        {
            // The file is gone as asked; the bytes are an orphan to sweep.
            tracing::warn!(blob = %blob, error = %e, "could not delete a freed blob");
        }
        Ok(())
    }

    /// Opens a file the caller may read (see [`Self::get_file`] and
    /// [`Self::readable_file`]), whole or a byte range within it (the door
    /// has checked the range against the size).
    pub async fn read_file(&self, file: FileRecord, range: Option<Range<u64>>) -> Result<Download> {
        let id = &file.id;
        let range = range.unwrap_or(0..file.blob.size);
        debug_assert!(range.start <= range.end && range.end <= file.blob.size);
        let body = match self.store.read(&file.blob.id, range.clone()).await {
            Ok(body) => body,
            // Deleted meanwhile, or a catalog that names a missing blob (a
            // server fault, reported as one).
            Err(StoreError::NotFound) if self.catalog.get_file(id).await?.is_none() => {
                return Err(Error::FileNotFound);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Download { file, range, body })
    }
}
