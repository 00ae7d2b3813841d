//! Proof of possession: instant upload across owners.
//!
//! A content hash alone never hands out a file: anyone can learn a hash.
//! An owner's check finds only its own content ([`crate::Catalog::find_owned_blob`]);
//! every other check starts (or resumes) an upload, and the answer carries
//! a challenge: a nonce and some block indexes. A client holding the
//! bytes answers with SHA-256(nonce ‖ block) for each; if the server
//! holds verified content with that hash and the answers match its bytes,
//! the file is recorded at once and the upload ends.
//!
//! What a client without the bytes learns is nothing: the check's answer
//! has the same shape whether the content exists elsewhere or not (both
//! are new uploads with a challenge, and both run the same catalog
//! queries), and a wrong proof is answered like a missing one, after the
//! same time ([`proof_time`], which depends on the number of blocks only)
//! whatever the server had to read.
//!
//! The challenge is derived from the owner and the content (hash and size)
//! under the server's signing key: nothing is stored, every node derives
//! the same one, and asking again — a new upload, another name, a delete
//! and a retry — gives the same blocks, so a client holding most of a file
//! cannot re-roll until the challenge misses what it lacks. How many blocks
//! grows with the file ([`challenge_blocks`]). Each owner may try a limited
//! number of proofs per minute ([`Limits::proofs_per_minute`], per node);
//! past it a proof is not checked, and answered as one that did not hold.
//!
//! [`Limits::proofs_per_minute`]: super::Limits::proofs_per_minute

use std::time::Duration;

use futures::TryStreamExt;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::catalog::CatalogError;
use crate::error::{Error, Result};
use crate::hash::{BLOCK_SIZE, Digest32};
use crate::model::{
    Blob, FileId, FileRecord, NewFile, Owner, Timestamp, Upload, UploadId, UploadMode,
};

use super::{UploadService, upload_lock};

/// The fewest blocks a proof covers (fewer when the file has fewer).
pub const PROOF_BLOCKS: u64 = 3;

/// The most blocks a proof covers, whatever the file's size.
pub const MAX_PROOF_BLOCKS: u64 = 32;

/// Every proof is answered at least this long after it arrived, plus
/// [`PROOF_BLOCK_TIME`] per block challenged: [`proof_time`].
pub const PROOF_TIME: Duration = Duration::from_millis(400);

/// The time a proof allows per block challenged: reading and hashing 4 MiB
/// at 160 MB/s, well below what a disk or an object store serves.
pub const PROOF_BLOCK_TIME: Duration = Duration::from_millis(25);

/// How many blocks the challenge of a file of `blocks` blocks names: the
/// square root of their number, at least [`PROOF_BLOCKS`] and at most
/// [`MAX_PROOF_BLOCKS`] (all of them when the file has fewer). A client
/// missing a tenth of a 1 GiB file (256 blocks, 16 challenged) passes with
/// a chance of 0.9^16 ≈ 19 %, once: the challenge never changes for it.
pub fn challenge_blocks(blocks: u64) -> u64 {
    blocks
        .isqrt()
        .clamp(PROOF_BLOCKS, MAX_PROOF_BLOCKS)
        .min(blocks)
}

/// How long after its arrival a proof of `blocks` blocks is answered,
/// whether the content exists or not.
pub fn proof_time(blocks: usize) -> Duration {
    PROOF_TIME + PROOF_BLOCK_TIME * blocks as u32
}

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
    /// The challenge of a chunked upload: the same for every upload of the
    /// same content by the same owner.
    pub async fn challenge(&self, upload: &Upload) -> Result<Challenge> {
        let size = upload.size.unwrap_or(0);
        let count = size.div_ceil(BLOCK_SIZE);
        let key = self.signing_key().await?;
        let content = upload
            .claims
            .hash
            .map(|h| h.to_hex())
            .unwrap_or_else(|| format!("upload {}", upload.id));
        let derive = |what: &str| {
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(format!("{what}\n{}\n{content}\n{size}", upload.owner.0).as_bytes());
            mac.finalize().into_bytes()
        };
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&derive("nonce")[..16]);
        let seed = derive("blocks");
        let wanted = challenge_blocks(count) as usize;
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
    /// it: see `replay`); answered [`proof_time`] after it arrived, whatever
    /// it found.
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
        // The answer comes at `due`, whatever was found: a check that has
        // not ended by then counts as a proof that did not hold, so that how
        // long reading the content takes never tells whether it exists.
        let due = started + proof_time(challenge.blocks.len());
        let held = match self.proofs.check_key(owner) {
            Ok(()) => tokio::time::timeout_at(due, self.check_proof(&upload, &challenge, answers))
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(upload = %id, "a proof was not checked within its answer time");
                    Ok(None)
                })?,
            // Past the owner's allowance: not checked at all.
            Err(_) => None,
        };
        tokio::time::sleep_until(due).await;
        match held {
            Some(blob) => match self.record_proven(&upload, &blob, file_id).await? {
                Some(file) => Ok(ProofOutcome::Instant(file)),
                None => Ok(ProofOutcome::Upload(self.get_upload(owner, id).await?)),
            },
            None => Ok(ProofOutcome::Upload(self.get_upload(owner, id).await?)),
        }
    }

    /// The stored content the answers prove the client holds; `None` for
    /// any reason they do not.
    async fn check_proof(
        &self,
        upload: &Upload,
        challenge: &Challenge,
        answers: &[Digest32],
    ) -> Result<Option<Blob>> {
        let Some(hash) = upload.claims.hash else {
            return Ok(None);
        };
        let Some(blob) = self.catalog.find_blob(&hash).await? else {
            return Ok(None);
        };
        let size = upload.size.unwrap_or(0);
        if !claims_match(upload, &blob) {
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
        Ok(Some(blob))
    }

    /// Records the file of a proven upload on `blob` and ends the upload;
    /// `None` if the upload completed or ended meanwhile, or the content
    /// was freed.
    async fn record_proven(
        &self,
        upload: &Upload,
        blob: &Blob,
        file_id: Option<FileId>,
    ) -> Result<Option<FileRecord>> {
        // Proven: the file is recorded and the upload (with what it staged)
        // ends, under its lock so that no chunk is being written into it
        // and no completion runs beside; looked at again under the lock,
        // so that an upload completed or ended meanwhile makes no second
        // file.
        let _guard = self.catalog.lock(&upload_lock(&upload.id)).await?;
        let upload = match self.get_upload(&upload.owner, &upload.id).await {
            Ok(u) if u.file.is_none() && claims_match(&u, blob) => u,
            Ok(_) | Err(Error::UploadNotFound | Error::UploadGone(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Recorded already by a proof that stopped before ending the upload.
        let keyed: Vec<_> = file_id
            .iter()
            .map(|id| (id.clone(), upload.name.as_str(), blob.hash))
            .collect();
        if let Some(mut done) = self.recorded_already(&upload.owner, &keyed).await? {
            self.discard(&upload, None).await?;
            return Ok(done.pop());
        }
        let file = NewFile {
            id: file_id.unwrap_or_else(FileId::random),
            owner: upload.owner.clone(),
            name: upload.name.clone(),
            mime: upload.mime.clone(),
            created_at: Timestamp::now(),
            // Checked against the stored content's digests above.
            md5: upload.claims.md5,
            sha256: upload.claims.sha256,
        };
        let _gate = self.gate(&upload.owner, blob.size).await?;
        let record = match self.catalog.insert_file(&file, &blob.id).await {
            Ok(record) => record,
            Err(CatalogError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.discard(&upload, None).await?;
        Ok(Some(record))
    }
}

/// Whether stored content answers every claim of an upload. Claims it
/// cannot vouch for without reading it all are not checked by a proof: the
/// client uploads instead.
fn claims_match(upload: &Upload, blob: &Blob) -> bool {
    upload.claims.hash == Some(blob.hash)
        && upload.size == Some(blob.size)
        && upload.claims.md5.is_none_or(|c| blob.md5 == Some(c))
        && upload.claims.sha256.is_none_or(|c| blob.sha256 == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_grow_with_the_file_within_bounds() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (15, 3),
            (16, 4),
            (256, 16),
            (1023, 31),
            (1024, 32),
            (1 << 18, 32),
        ];
        for (blocks, challenged) in cases {
            assert_eq!(challenge_blocks(blocks), challenged, "{blocks} blocks");
        }
        assert_eq!(proof_time(16), PROOF_TIME + PROOF_BLOCK_TIME * 16);
    }
}
