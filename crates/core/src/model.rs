//! The records the core works with: uploads, files, blobs, and their ids.
//!
//! These are plain values shared by the service and the catalog backends.
//! They carry no behaviour beyond small derived facts (a chunk's byte range,
//! the missing chunks of an upload).

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::hash::{ContentHash, Digest32};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id: 128 random bits as 32 lowercase hex digits.
            pub fn random() -> Self {
                $name(hex::encode(rand::random::<[u8; 16]>()))
            }

            /// Accepts a string shaped like an id this server hands out.
            /// Anything else cannot name a record and is refused here, so it
            /// never reaches storage.
            pub fn parse(s: &str) -> Option<Self> {
                is_id(s).then(|| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

/// Ids are 32 lowercase hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

id_type!(
    /// Names an upload in progress (or recently completed).
    UploadId
);
id_type!(
    /// Names a file record: a name pointing at a blob.
    FileId
);
impl FileId {
    /// The id of the `index`-th file recorded by a request of `owner` that
    /// carries the idempotency key `key`: the same whenever that request
    /// is repeated, different for another owner, key or position, and not
    /// one a client can choose (it is a hash).
    pub fn for_request(owner: &Owner, key: &str, index: usize) -> FileId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            b"tusk file id".as_slice(),
            owner.0.as_bytes(),
            key.as_bytes(),
        ] {
            // Length-prefixed, so that no two inputs run together.
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update((index as u64).to_be_bytes());
        FileId(hex::encode(&h.finalize()[..16]))
    }
}

id_type!(
    /// Names a bearer token (not the token itself: what lists and revokes
    /// it).
    TokenId
);
id_type!(
    /// Names stored content in a `BlobStore`. Chosen by the server when an
    /// upload starts; content addressing lives in the catalog.
    BlobId
);

/// Who owns files and uploads. Every record is scoped to one owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Owner(pub String);

impl Owner {
    /// The single owner of a server that has no accounts.
    pub fn local() -> Self {
        Owner("local".to_owned())
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn plus(self, d: std::time::Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as i64))
    }

    /// RFC 3339, e.g. `2026-11-21T09:30:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// Seconds since the epoch, for HTTP dates.
    pub fn to_system_time(self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// How an upload receives its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// Whole chunks by index, in any order, in parallel (the JSON API).
    Chunks,
    /// Bytes appended at the current offset, in pieces of any length (tus,
    /// form posts).
    Append,
}

impl UploadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadMode::Chunks => "chunks",
            UploadMode::Append => "append",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "chunks" => Some(UploadMode::Chunks),
            "append" => Some(UploadMode::Append),
            _ => None,
        }
    }
}

/// How an upload takes part in a concatenation (tus `Upload-Concat`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Concat {
    /// An upload of its own: it completes into a file.
    #[default]
    None,
    /// A piece of a later concatenation. Once all its bytes are here they
    /// are committed into its blob, which is not a file and not content for
    /// dedup: it waits for the concatenations that use it.
    Partial,
    /// The concatenation of these partial uploads, in order. Their bytes are
    /// copied into it once they are all complete; then it completes into a
    /// file like any upload.
    Final(Vec<UploadId>),
}

impl Concat {
    pub fn as_str(&self) -> &'static str {
        match self {
            Concat::None => "none",
            Concat::Partial => "partial",
            Concat::Final(_) => "final",
        }
    }
}

/// Why an upload that existed is gone. The catalog remembers it so that
/// doors can answer "gone" rather than "never existed".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Its owner deleted it.
    Terminated,
    /// It sat idle past its expiry.
    Expired,
    /// A partial upload whose bytes went into a concatenation.
    Concatenated,
    /// Its content failed verification and was discarded.
    Rejected,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Terminated => "terminated",
            EndReason::Expired => "expired",
            EndReason::Concatenated => "concatenated",
            EndReason::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EndReason::Terminated,
            EndReason::Expired,
            EndReason::Concatenated,
            EndReason::Rejected,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What the catalog remembers of an upload that is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedUpload {
    pub owner: Owner,
    pub reason: EndReason,
    pub ended_at: Timestamp,
}

/// What a client claims about content it is about to send. Every claim is
/// verified before a file is committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub hash: Option<ContentHash>,
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<Digest32>,
}

/// Where an upload's bytes are staged in the `BlobStore` until completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staging {
    /// The blob the staged bytes become.
    pub blob: BlobId,
    /// Backend state (e.g. an S3 multipart upload id); empty for fs.
    pub handle: String,
}

/// An upload as the catalog holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub id: UploadId,
    pub owner: Owner,
    pub name: String,
    pub mime: String,
    /// `None` while the length is deferred (tus `Upload-Defer-Length`).
    pub size: Option<u64>,
    pub claims: Claims,
    pub chunk_size: u64,
    pub mode: UploadMode,
    pub staging: Staging,
    /// Append mode: bytes durably received so far, contiguous from 0.
    pub offset: u64,
    /// Append mode: the saved `BlockHasher` of the partial chunk at `offset`.
    pub tail: Option<Vec<u8>>,
    /// Set once the upload completed into a file.
    pub file: Option<FileId>,
    /// Its part in a concatenation, if any.
    pub concat: Concat,
    /// Metadata a door keeps with the upload verbatim (tus
    /// `Upload-Metadata`); the core does not read it.
    pub meta: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Indexes of the chunks durably received, ascending.
    pub received: Vec<u32>,
}

impl Upload {
    /// Whether the upload expires when idle. Completed uploads do not: they
    /// are a record of their file. Nor do final uploads: they wait for their
    /// parts, which expire on their own.
    pub fn can_expire(&self) -> bool {
        self.file.is_none() && !matches!(self.concat, Concat::Final(_))
    }

    /// Whether the upload is past its expiry at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.can_expire() && self.expires_at <= now
    }

    /// Whether an append upload holds all its bytes (its length is known
    /// and reached, every chunk sealed).
    pub fn is_full(&self) -> bool {
        self.size == Some(self.offset) && self.missing().is_empty()
    }

    /// Number of chunks, once the size is known.
    pub fn chunk_count(&self) -> Option<u32> {
        self.size.map(|s| chunk_count(s, self.chunk_size))
    }

    /// The byte range of chunk `index`, once the size is known.
    pub fn chunk(&self, index: u32) -> Option<ChunkRef> {
        let size = self.size?;
        let offset = index as u64 * self.chunk_size;
        (offset < size).then(|| ChunkRef {
            index,
            offset,
            len: self.chunk_size.min(size - offset),
        })
    }

    /// Chunk indexes not yet received.
    pub fn missing(&self) -> Vec<u32> {
        let count = self.chunk_count().unwrap_or(0);
        let mut have = self.received.iter().peekable();
        (0..count)
            .filter(|i| {
                while have.peek().is_some_and(|&&r| r < *i) {
                    have.next();
                }
                have.peek() != Some(&i)
            })
            .collect()
    }
}

/// Number of chunks of `chunk_size` covering `size` bytes.
pub fn chunk_count(size: u64, chunk_size: u64) -> u32 {
    size.div_ceil(chunk_size) as u32
}

/// One chunk's place in its upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub index: u32,
    /// Absolute offset of the chunk's first byte.
    pub offset: u64,
    /// The chunk's exact length.
    pub len: u64,
}

/// A chunk durably received: the digests of its 4 MiB blocks and what the
/// store handed back for it (an S3 ETag; empty for fs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    pub index: u32,
    pub digests: Vec<Digest32>,
    pub receipt: String,
}

/// Stored, verified content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub id: BlobId,
    pub hash: ContentHash,
    pub size: u64,
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<Digest32>,
}

/// A named file pointing at a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    pub owner: Owner,
    pub name: String,
    pub mime: String,
    pub blob: Blob,
    pub created_at: Timestamp,
    /// Whether anyone may download it, without a token or a signed link.
    pub public: bool,
}

/// A file about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    pub id: FileId,
    pub owner: Owner,
    pub name: String,
    pub mime: String,
    pub created_at: Timestamp,
}

/// One page of a file listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePage {
    pub files: Vec<FileRecord>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileQuery {
    pub owner: Owner,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// An account: the owner tokens act for, and its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub owner: Owner,
    /// The most bytes its files and unfinished uploads may add up to.
    pub quota: Option<u64>,
    /// May manage tokens and read the metrics.
    pub admin: bool,
}

/// A bearer token about to be recorded. The token itself is never stored:
/// only its SHA-256, which is all a request needs to be matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub id: TokenId,
    pub secret_hash: Digest32,
    pub owner: Owner,
    /// The account's quota from now on; `None` keeps what it had (none for
    /// a new account).
    pub quota: Option<u64>,
    /// Makes the account an admin; `false` keeps what it had.
    pub admin: bool,
    pub created_at: Timestamp,
}

/// A token as the catalog lists it, with its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub account: Account,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Which tokens to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoke {
    Token(TokenId),
    /// Every token of this owner.
    Owner(Owner),
}

/// What an owner holds: the sizes that count against a quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Files, each at its full size (shared content counts for each file).
    pub stored: u64,
    /// Unfinished, unexpired uploads, at their full size when known, else
    /// at what they hold so far.
    pub uploading: u64,
    /// How many unfinished, unexpired uploads there are.
    pub uploads: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_paths() {
        let id = UploadId::random();
        assert_eq!(UploadId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "../etc/passwd",
            "ABCDEF0123456789ABCDEF0123456789",
            "0123",
        ] {
            assert!(FileId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn request_file_ids_are_stable_and_distinct() {
        let (ann, bob) = (Owner("ann".into()), Owner("bob".into()));
        let id = FileId::for_request(&ann, "k1", 0);
        assert_eq!(FileId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(FileId::for_request(&ann, "k1", 0), id);
        for other in [
            FileId::for_request(&bob, "k1", 0),
            FileId::for_request(&ann, "k2", 0),
            FileId::for_request(&ann, "k1", 1),
        ] {
            assert_ne!(other, id);
        }
    }

    #[test]
    fn missing_chunks() {
        let mut u = Upload {
            id: UploadId::random(),
            owner: Owner::local(),
            name: "a".into(),
            mime: "x/y".into(),
            size: Some(10),
            claims: Claims::default(),
            chunk_size: 2,
            mode: UploadMode::Chunks,
            staging: Staging {
                blob: BlobId::random(),
                handle: String::new(),
            },
            offset: 0,
            tail: None,
            file: None,
            concat: Concat::None,
            meta: None,
            created_at: Timestamp(0),
            expires_at: Timestamp(0),
            received: vec![0, 3],
        };
        assert_eq!(u.chunk_count(), Some(5));
        assert_eq!(u.missing(), vec![1, 2, 4]);
        assert_eq!(
            u.chunk(4),
            Some(ChunkRef {
                index: 4,
                offset: 8,
                len: 2
            })
        );
        assert_eq!(u.chunk(5), None);
        u.size = Some(9);
        assert_eq!(u.chunk(4).unwrap().len, 1);
    }

    #[test]
    fn timestamps_render_rfc3339() {
        assert_eq!(
            Timestamp(1_700_000_000_123).to_rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
