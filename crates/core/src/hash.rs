//! Content identity: the `sha256-4m` block hash.
//!
//! The identity of content is SHA-256 over the concatenation of the SHA-256
//! digests of its consecutive 4 MiB blocks (the last block may be shorter; an
//! empty file has no blocks, so its hash is SHA-256 of nothing). It is written
//! `sha256-4m:<64 lowercase hex>`.
//!
//! Blocks are independent, so clients hash them in parallel and the server
//! digests each block as its bytes arrive, in any order; completion only
//! combines the stored block digests. [`BlockHasher`] is the streaming half:
//! it can be saved and restored between requests, which is how an append
//! that ends in the middle of a block resumes later without re-reading.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

/// The block size of the content hash: 4 MiB.
pub const BLOCK_SIZE: u64 = 4 * 1024 * 1024;

/// The textual prefix of a content hash.
pub const PREFIX: &str = "sha256-4m:";

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// The `sha256-4m` hash of some content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub Digest32);

impl ContentHash {
    /// Combines the digests of consecutive blocks into the content hash.
    pub fn from_block_digests<'a>(digests: impl IntoIterator<Item = &'a Digest32>) -> Self {
        let mut outer = Sha256::new();
        for d in digests {
            outer.update(d);
        }
        ContentHash(outer.finalize().into())
    }

    /// Hashes bytes held in memory (small inputs, tests).
    pub fn of_bytes(data: &[u8]) -> Self {
        let mut h = BlockHasher::new();
        h.update(data);
        Self::from_block_digests(&h.finish())
    }

    pub fn as_bytes(&self) -> &Digest32 {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a content hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a content hash is written `sha256-4m:` followed by 64 hex digits")]
pub struct ParseHashError;

impl FromStr for ContentHash {
    type Err = ParseHashError;

    /// Accepts `sha256-4m:<64 hex>`; the hex digits may be of either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix(PREFIX).ok_or(ParseHashError)?;
        parse_hex32(hex_part).map(ContentHash).ok_or(ParseHashError)
    }
}

/// Parses exactly 64 hex digits.
pub fn parse_hex32(s: &str) -> Option<Digest32> {
    let mut out = [0u8; 32];
    (s.len() == 64 && hex::decode_to_slice(s, &mut out).is_ok()).then_some(out)
}

/// Streaming digests of 4 MiB blocks.
///
/// Feed bytes that start on a block boundary; every completed block yields a
/// digest. [`BlockHasher::finish`] closes a trailing partial block. The whole
/// state, including a partial block in progress, can be saved with
/// [`BlockHasher::save`] and restored with [`BlockHasher::restore`].
#[derive(Clone, Default)]
pub struct BlockHasher {
    block: Sha256,
    filled: u64,
    digests: Vec<Digest32>,
}

/// Version tag of the saved state layout.
const STATE_V1: u8 = 1;

/// Why saved hasher state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("saved block-hasher state is corrupt")]
pub struct StateError;

impl BlockHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (BLOCK_SIZE - self.filled) as usize;
            let take = room.min(data.len());
            self.block.update(&data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == BLOCK_SIZE {
                self.close_block();
            }
        }
    }

    fn close_block(&mut self) {
        let digest = std::mem::take(&mut self.block).finalize();
        self.digests.push(digest.into());
        self.filled = 0;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.digests.len() as u64 * BLOCK_SIZE + self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Digests of the blocks completed so far.
    pub fn digests(&self) -> &[Digest32] {
        &self.digests
    }

    /// Closes a partial block, if any, and returns every block digest.
    pub fn finish(mut self) -> Vec<Digest32> {
        if self.filled > 0 {
            self.close_block();
        }
        self.digests
    }

    /// Serialises the complete state.
    pub fn save(&self) -> Vec<u8> {
        let sha = self.block.serialize();
        let mut out = Vec::with_capacity(1 + 4 + 32 * self.digests.len() + 8 + sha.len());
        out.push(STATE_V1);
        out.extend_from_slice(&(self.digests.len() as u32).to_le_bytes());
        for d in &self.digests {
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&self.filled.to_le_bytes());
        out.extend_from_slice(&sha);
        out
    }

    /// Restores state saved by [`BlockHasher::save`].
    pub fn restore(bytes: &[u8]) -> Result<Self, StateError> {
        let (&version, rest) = bytes.split_first().ok_or(StateError)?;
        if version != STATE_V1 || rest.len() < 4 {
            return Err(StateError);
        }
        let (count, rest) = rest.split_at(4);
        let count = u32::from_le_bytes(count.try_into().unwrap()) as usize;
        let digest_bytes = count.checked_mul(32).ok_or(StateError)?;
        if rest.len() < digest_bytes + 8 {
            return Err(StateError);
        }
        let (digest_part, rest) = rest.split_at(digest_bytes);
        let digests = digest_part
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        let (filled, sha) = rest.split_at(8);
        let filled = u64::from_le_bytes(filled.try_into().unwrap());
        if filled >= BLOCK_SIZE {
            return Err(StateError);
        }
        let state = sha.try_into().map_err(|_| StateError)?;
        let block = Sha256::deserialize(state).map_err(|_| StateError)?;
        Ok(BlockHasher {
            block,
            filled,
            digests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic content: byte `i` is `(i * 7 + i / 4099) mod 251`.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 7 + i / 4099) % 251) as u8).collect()
    }

    // The expected values were computed independently with Python's hashlib:
    //   def h(b): ds = b"".join(hashlib.sha256(b[i:i+4<<20]).digest()
    //                          for i in range(0, len(b), 4<<20))
    //             return hashlib.sha256(ds).hexdigest()
    // over the same `pattern` bytes.
    #[test]
    fn known_vectors() {
        let cases: &[(usize, &str)] = &[
            (
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                1,
                "1406e05881e299367766d313e26c05564ec91bf721d31726bd6e46e60689539a",
            ),
            (
                4 << 20,
                "dbf1f598ba6c4afae935830c4e987ee8763cd1c99b8cd87c2afc24b4a5bb4453",
            ),
            (
                (4 << 20) + 1,
                "8e9129ab1e7301a693446c2f6378fb67ea7bed3e9a7486cb4434a3a2e2406a6b",
            ),
            (
                3 * (4 << 20) - 5,
                "273ab2378082a71b4cd410a4a76df9c82cd129ff4d5cbec5bab11e688b8945bc",
            ),
        ];
        for &(len, want) in cases {
            let got = ContentHash::of_bytes(&pattern(len));
            assert_eq!(got.to_hex(), want, "length {len}");
        }
    }

    #[test]
    fn split_updates_equal_one_update() {
        let data = pattern(9 * 1024 * 1024 + 17);
        let whole = ContentHash::of_bytes(&data);
        let mut h = BlockHasher::new();
        for piece in data.chunks(1_000_003) {
            h.update(piece);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(ContentHash::from_block_digests(&h.finish()), whole);
    }

    #[test]
    fn save_and_restore_mid_block() {
        let data = pattern(6 * 1024 * 1024);
        let whole = ContentHash::of_bytes(&data);
        let mut first = BlockHasher::new();
        first.update(&data[..5_000_000]);
        let saved = first.save();
        let mut second = BlockHasher::restore(&saved).unwrap();
        assert_eq!(second.len(), 5_000_000);
        second.update(&data[5_000_000..]);
        assert_eq!(ContentHash::from_block_digests(&second.finish()), whole);
    }

    #[test]
    fn restore_rejects_garbage() {
        assert!(BlockHasher::restore(&[]).is_err());
        assert!(BlockHasher::restore(&[9, 0, 0, 0, 0]).is_err());
        let mut saved = BlockHasher::new().save();
        saved.truncate(saved.len() - 1);
        assert!(BlockHasher::restore(&saved).is_err());
    }

    #[test]
    fn parse_and_display() {
        let h = ContentHash::of_bytes(b"abc");
        let text = h.to_string();
        assert!(text.starts_with("sha256-4m:"));
        assert_eq!(text.parse::<ContentHash>().unwrap(), h);
        assert_eq!(
            text.to_uppercase()
                .replace("SHA256-4M:", "sha256-4m:")
                .parse::<ContentHash>()
                .unwrap(),
            h
        );
        for bad in [
            "",
            "sha256-4m:",
            "sha256:00",
            "sha256-4m:zz",
            &text[..text.len() - 1],
        ] {
            assert!(bad.parse::<ContentHash>().is_err(), "{bad:?}");
        }
    }
    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Any text: no panic; what parses is the prefix and 64 hex
            /// digits, and prints back as them (in lower case).
            #[test]
            fn hashes_parse_only_their_shape(
                text in prop_oneof![
                    any::<String>(),
                    "sha256-4m:[0-9a-fA-F]{60,68}",
                    "(sha256-4m:)?[0-9a-fA-Fg-z:\\-]{0,70}",
                ],
            ) {
                if let Ok(hash) = text.parse::<ContentHash>() {
                    prop_assert_eq!(text.len(), PREFIX.len() + 64);
                    prop_assert_eq!(hash.to_string(), text.to_ascii_lowercase());
                }
                let hex = parse_hex32(&text);
                prop_assert_eq!(
                    hex.is_some(),
                    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
                );
            }

            #[test]
            fn hashes_round_trip(digest in any::<[u8; 32]>()) {
                let hash = ContentHash(digest);
                prop_assert_eq!(hash.to_string().parse::<ContentHash>(), Ok(hash));
                prop_assert_eq!(parse_hex32(&hex::encode(digest)), Some(digest));
            }
        }
    }
}
