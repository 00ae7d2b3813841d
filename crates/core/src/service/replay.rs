//! Requests repeated after their answer was lost.
//!
//! A client that sent a batch of small files and lost the answer (the
//! connection dropped, the server crashed right after recording them)
//! cannot tell whether the files were recorded, so it sends them again.
//! With an idempotency key, each file of the request gets a file id derived
//! from the owner, the key and its position ([`FileId::for_request`]); the
//! repeat finds those ids recorded and answers with the same files instead
//! of recording them twice.
//!
//! A batch is recorded all or none, so looking at its first file tells
//! whether it was recorded. Two copies of one request running at the same
//! moment both find nothing and both record: the second then fails on the
//! first's ids (a server error, which clients retry) and its repeat finds
//! them.
//!
//! [`FileId::for_request`]: crate::model::FileId::for_request

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::model::{FileId, FileRecord, Owner};

use super::UploadService;

impl UploadService {
    /// The files an earlier copy of this request recorded under `ids` (with
    /// these names and contents), if it recorded them; `None` if it did
    /// not. [`Error::IdempotencyKeyReused`] when the ids name other files:
    /// the key was used for another request.
    pub(super) async fn recorded_already(
        &self,
        owner: &Owner,
        files: &[(FileId, &str, ContentHash)],
    ) -> Result<Option<Vec<FileRecord>>> {
        let Some((first, ..)) = files.first() else {
            return Ok(None);
        };
        if self.catalog.get_file(first).await?.is_none() {
            return Ok(None);
        }
        let mut recorded = Vec::with_capacity(files.len());
        for (id, name, hash) in files {
            match self.catalog.get_file(id).await? {
                Some(f) if &f.owner == owner && f.name == *name && f.blob.hash == *hash => {
                    recorded.push(f)
                }
                _ => return Err(Error::IdempotencyKeyReused),
            }
        }
        Ok(Some(recorded))
    }
}
