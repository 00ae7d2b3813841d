//! Proof of possession: instant upload across owners.
//!
//! A content hash alone never hands out a file: anyone can learn a hash.
//! An owner's check finds only its own content ([`crate::Catalog::find_owned_blob`]);
//! every other check starts (or resumes) an upload, and the answer carries
//! a challenge: a nonce and a few block indexes. A client holding the
//! bytes answers with SHA-256(nonce ‖ block) for each; if the server
//! holds verified content with that hash and the answers match its bytes,
//! the file is recorded at once and the upload ends.
//!
//! What a client without the bytes learns is nothing: the check's answer
//! has the same shape whether the content exists elsewhere or not (both
//! are new uploads with a challenge, and both run the same catalog
//! queries), and a wrong proof is answered like a missing one, after the
//! same fixed time ([`PROOF_TIME`]) whatever the server had to read.
//!
//! The challenge is derived from the upload id under the server's signing
//! key, so nothing is stored and every node derives the same one; it is
//! bound to one upload of one owner, so a proof seen elsewhere is useless.

use std::time::Duration;

use futures::TryStreamExt;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::catalog::CatalogError;
use crate::error::{Error, Result};
use crate::hash::{BLOCK_SIZE, Digest32};
use crate::model::{FileId, FileRecord, NewFile, Owner, Timestamp, Upload, UploadId, UploadMode};

use super::{UploadService, upload_lock};

/// How many blocks a proof covers (fewer when the file has fewer).
pub const PROOF_BLOCKS: u64 = 3;

/// Every proof is answered this long after it arrived, whether the content
/// exists or not, and whether reading it was quick or slow (up to this).
pub const PROOF_TIME: Duration = Duration::from_millis(400);

/// What a client must hash to prove it holds the content of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: [u8; 16],
    /// Block indexes, ascending; the answers come in this order.
    pub blocks: Vec<u64>,
}

/// What a proof achieved.
#[derive(Debug, Clone)]
pub enum ProofOutcome {
    /// The proof held: the file is recorded and the upload is over.
    Instant(FileRecord),
    /// It did not (or there is nothing to prove it against): upload.
    Upload(Upload),
}

impl UploadService {
    /// The challenge of a chunked upload (the same every time it is asked).
    pub async fn challenge(&self, upload: &Upload) -> Result<Challenge> {
        let size = upload.size.unwrap_or(0);
        let count = size.div_ceil(BLOCK_SIZE);
        let key = self.signing_key().await?;
        let derive = |what: &str| {
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(format!("{what}\n{}", upload.id).as_bytes());
            mac.finalize().into_bytes()
        };
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&derive("nonce")[..16]);
        let seed = derive("blocks");
        let wanted = PROOF_BLOCKS.min(count) as usize;
        let mut blocks = Vec::with_capacity(wanted);
        let mut round = 0u64;
        while blocks.len() < wanted {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(round.to_le_bytes());
            let pick = u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes")) % count;
            if !blocks.contains(&pick) {
                blocks.push(pick);
            }
            round += 1;
        }
        blocks.sort_unstable();
        Ok(Challenge { nonce, blocks })
    }

    /// Checks a proof of possession for an upload of `owner` and, if it
    /// holds, records the file at once (as `file_id` when the request names
    /// it: see `replay`); answered after [`PROOF_TIME`].
    pub async fn prove(
        &self,
        owner: &Owner,
        id: &UploadId,
        answers: &[Digest32],
        file_id: Option<FileId>,
    ) -> Result<ProofOutcome> {
        let started = tokio::time::Instant::now();
        let upload = self.get_upload(owner, id).await?;
        if upload.mode != UploadMode::Chunks || upload.file.is_some() {
            return Err(Error::WrongMode);
        }
        let challenge = self.challenge(&upload).await?;
        if answers.len() != challenge.blocks.len() {
            return Err(Error::InvalidProof {
                expected: challenge.blocks.len(),
            });
        }
        let proven = self
            .proven_file(&upload, &challenge, answers, file_id)
            .await;
        tokio::time::sleep_until(started + PROOF_TIME).await;
        match proven? {
            Some(file) => Ok(ProofOutcome::Instant(file)),
            None => Ok(ProofOutcome::Upload(upload)),
        }
    }

    /// The file recorded on stored content if the answers prove it; `None`
    /// for any reason they do not.
    async fn proven_file(
        &self,
        upload: &Upload,
        challenge: &Challenge,
        answers: &[Digest32],
        file_id: Option<FileId>,
    ) -> Result<Option<FileRecord>> {
        let Some(hash) = upload.claims.hash else {
            return Ok(None);
        };
        let Some(blob) = self.catalog.find_blob(&hash).await? else {
            return Ok(None);
        };
        let size = upload.size.unwrap_or(0);
        // Claims the stored content cannot vouch for without reading it
        // all are not checked here: the client uploads instead.
        let claims_hold = blob.size == size
            && upload.claims.md5.is_none_or(|c| blob.md5 == Some(c))
            && upload.claims.sha256.is_none_or(|c| blob.sha256 == Some(c));
        if !claims_hold {
            return Ok(None);
        }
        for (&index, answer) in challenge.blocks.iter().zip(answers) {
            let start = index * BLOCK_SIZE;
            let end = (start + BLOCK_SIZE).min(size);
            let mut digest = Sha256::new();
            digest.update(challenge.nonce);
            let stream = match self.store.read(&blob.id, start..end).await {
                Ok(s) => s,
                Err(crate::store::StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let digest = stream
                .try_fold(digest, |mut d, bytes| async move {
                    d.update(&bytes);
                    Ok(d)
                })
                .await
                .map_err(|e| Error::Store(crate::store::StoreError::Io(e)))?;
            let expected: Digest32 = digest.finalize().into();
            if &expected != answer {
                return Ok(None);
            }
        }
        // Proven: the file is recorded and the upload (with what it staged)
        // ends, under its lock so that no chunk is being written into it.
        let _guard = self.catalog.lock(&upload_lock(&upload.id)).await?;
        // Recorded already by a proof that stopped before ending the upload.
        let keyed: Vec<_> = file_id
            .iter()
            .map(|id| (id.clone(), upload.name.as_str(), hash))
            .collect();
        if let Some(mut done) = self.recorded_already(&upload.owner, &keyed).await? {
            self.discard(upload, None).await?;
            return Ok(done.pop());
        }
        let file = NewFile {
            id: file_id.unwrap_or_else(FileId::random),
            owner: upload.owner.clone(),
            name: upload.name.clone(),
            mime: upload.mime.clone(),
            created_at: Timestamp::now(),
        };
        // No quota check: the file takes the place of the upload, which
        // counted at the same size.
        let record = match self.catalog.insert_file(&file, &blob.id).await {
            Ok(record) => record,
            Err(CatalogError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.discard(upload, None).await?;
        Ok(Some(record))
    }
}
