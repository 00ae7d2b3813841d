//! Hashing files with every core: 4 MiB blocks are independent, so each
//! thread digests every n-th block with positional reads and the digests
//! are combined in order.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tusk_core::hash::{BLOCK_SIZE, ContentHash, Digest32};

/// The content hash of a file, its size when hashed, and the digest of
/// each 4 MiB block (from which every chunk's own hash follows for free).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    pub size: u64,
    pub hash: ContentHash,
    pub blocks: Vec<Digest32>,
}

impl FileHash {
    /// The `sha256-4m` hash of the chunk `index` of `chunk_size` bytes.
    pub fn chunk_hash(&self, index: u32, chunk_size: u64) -> ContentHash {
        let per_chunk = (chunk_size / BLOCK_SIZE) as usize;
        let first = index as usize * per_chunk;
        let blocks =
            &self.blocks[first.min(self.blocks.len())..(first + per_chunk).min(self.blocks.len())];
        ContentHash::from_block_digests(blocks)
    }
}

/// Bytes read at a time by each hashing thread.
const PIECE: usize = 64 * 1024;

/// Hashes `path` with `threads` threads (0: one per core).
pub fn hash_file(path: &Path, threads: usize) -> io::Result<FileHash> {
    hash_file_counting(path, threads, &AtomicU64::new(0))
}

/// [`hash_file`], adding the bytes hashed so far to `progress` as it goes.
pub fn hash_file_counting(
    path: &Path,
    threads: usize,
    progress: &AtomicU64,
) -> io::Result<FileHash> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let blocks = hash_blocks(
        &file,
        size,
        0..size.div_ceil(BLOCK_SIZE) as usize,
        threads,
        progress,
    )?;
    Ok(FileHash {
        size,
        hash: ContentHash::from_block_digests(&blocks),
        blocks,
    })
}

/// The digests of blocks `range` of `file` (whose length is `size`), read
/// by `threads` threads (0: one per core) with positional reads.
pub fn hash_blocks(
    file: &File,
    size: u64,
    range: std::ops::Range<usize>,
    threads: usize,
    progress: &AtomicU64,
) -> io::Result<Vec<Digest32>> {
    let first = range.start;
    let blocks = range.len();
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, blocks.max(1));
    let mut digests = vec![[0u8; 32]; blocks];
    std::thread::scope(|scope| -> io::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> io::Result<Vec<(usize, Digest32)>> {
                    // Small reads into a small buffer: the kernel's copy
                    // and the digest both stay in the CPU's cache. Reading
                    // whole 4 MiB blocks cost three times the system time
                    // (bench/hash.sh).
                    let mut buf = vec![0u8; PIECE];
                    let mut out = Vec::new();
                    for i in (t..blocks).step_by(threads) {
                        let start = (first + i) as u64 * BLOCK_SIZE;
                        let end = size.min(start + BLOCK_SIZE);
                        let mut hasher = Sha256::new();
                        let mut at = start;
                        while at < end {
                            let n = (PIECE as u64).min(end - at) as usize;
                            file.read_exact_at(&mut buf[..n], at)?;
                            hasher.update(&buf[..n]);
                            at += n as u64;
                            progress.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        out.push((i, hasher.finalize().into()));
                    }
                    Ok(out)
                })
            })
            .collect();
        for w in workers {
            for (i, digest) in w.join().expect("hashing thread panicked")? {
                digests[i] = digest;
            }
        }
        Ok(())
    })?;
    Ok(digests)
}

/// Whole-file digests beside the content hash, for clients that claim
/// them (`md5`, `sha256`): one sequential pass, computing only those asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WholeDigests {
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<Digest32>,
}

/// Reads `path` once from start to end, computing the digests asked for.
pub fn whole_digests(path: &Path, md5: bool, sha256: bool) -> io::Result<WholeDigests> {
    if !md5 && !sha256 {
        return Ok(WholeDigests::default());
    }
    let mut file = File::open(path)?;
    let mut m = md5.then(md5::Md5::new);
    let mut s = sha256.then(Sha256::new);
    let mut buf = vec![0u8; BLOCK_SIZE as usize];
    loop {
        let n = io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(m) = m.as_mut() {
            m.update(&buf[..n]);
        }
        if let Some(s) = s.as_mut() {
            s.update(&buf[..n]);
        }
    }
    Ok(WholeDigests {
        md5: m.map(|m| m.finalize().into()),
        sha256: s.map(|s| s.finalize().into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn matches_the_in_memory_hash() {
        let data: Vec<u8> = (0..(9 << 20) + 123).map(|i: u32| (i % 253) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        for threads in [1, 3, 0] {
            let got = hash_file(f.path(), threads).unwrap();
            assert_eq!(got.size, data.len() as u64);
            assert_eq!(got.hash, ContentHash::of_bytes(&data), "{threads} threads");
        }
        let hashed = hash_file(f.path(), 2).unwrap();
        let cs = 8 << 20;
        assert_eq!(
            hashed.chunk_hash(0, cs),
            ContentHash::of_bytes(&data[..cs as usize])
        );
        assert_eq!(
            hashed.chunk_hash(1, cs),
            ContentHash::of_bytes(&data[cs as usize..])
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(
            hash_file(empty.path(), 2).unwrap().hash,
            ContentHash::of_bytes(b"")
        );
    }
}
