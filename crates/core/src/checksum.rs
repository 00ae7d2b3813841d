//! Plain whole-input checksums: MD5, SHA-1, SHA-256, SHA-512.
//!
//! These are not content identity (that is [`crate::hash`]); they verify what
//! a client claims about a request body (RFC 9530 `Content-Digest`, tus
//! `Upload-Checksum`) or about a whole file (`md5`/`sha256` claims of the
//! classic spark-md5 demos).

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// A checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Sha256,
        Algorithm::Sha512,
    ];

    /// The algorithm with this name (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// An expected checksum of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Checksum {
    /// Builds a checksum, refusing a digest of the wrong length.
    pub fn new(algorithm: Algorithm, digest: Vec<u8>) -> Option<Self> {
        (digest.len() == algorithm.digest_len()).then_some(Checksum { algorithm, digest })
    }
}

/// A running checksum computation.
#[derive(Clone)]
pub enum Hasher {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Verifies bytes against one or more expected checksums as they stream by.
/// The expected values may also be given after the bytes (HTTP trailers):
/// start with [`Verifier::computing`] and [`Verifier::expect`] them at the end.
#[derive(Clone)]
pub struct Verifier {
    running: Vec<(Algorithm, Hasher)>,
    expected: Vec<Checksum>,
}

impl Verifier {
    pub fn new(expected: impl IntoIterator<Item = Checksum>) -> Self {
        let expected: Vec<Checksum> = expected.into_iter().collect();
        let mut v = Verifier::computing(expected.iter().map(|c| c.algorithm));
        v.expected = expected;
        v
    }

    /// Computes `algorithms`, to be compared with checksums given later.
    pub fn computing(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut running: Vec<(Algorithm, Hasher)> = Vec::new();
        for a in algorithms {
            if !running.iter().any(|(r, _)| *r == a) {
                running.push((a, Hasher::new(a)));
            }
        }
        Verifier {
            running,
            expected: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.running {
            h.update(data);
        }
    }

    /// Adds expected checksums. Returns the algorithm of one that is not
    /// being computed, if any (nothing is added then).
    pub fn expect(&mut self, more: Vec<Checksum>) -> Result<(), Algorithm> {
        if let Some(c) = more
            .iter()
            .find(|c| !self.running.iter().any(|(a, _)| *a == c.algorithm))
        {
            return Err(c.algorithm);
        }
        self.expected.extend(more);
        Ok(())
    }

    /// The algorithms whose digest did not match, empty when all did.
    pub fn mismatches(self) -> Vec<Algorithm> {
        let digests: Vec<(Algorithm, Vec<u8>)> = self
            .running
            .into_iter()
            .map(|(a, h)| (a, h.finish()))
            .collect();
        self.expected
            .into_iter()
            .filter(|c| {
                digests
                    .iter()
                    .find(|(a, _)| *a == c.algorithm)
                    .is_none_or(|(_, d)| *d != c.digest)
            })
            .map(|c| c.algorithm)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let cases = [
            (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                Algorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (alg, hex_digest) in cases {
            let mut h = Hasher::new(alg);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(hex::encode(h.finish()), hex_digest, "{alg:?}");
        }
    }

    #[test]
    fn verifier_names_what_failed() {
        let good = Checksum::new(
            Algorithm::Md5,
            hex::decode("900150983cd24fb0d6963f7d28e17f72").unwrap(),
        )
        .unwrap();
        let bad = Checksum::new(Algorithm::Sha1, vec![0; 20]).unwrap();
        let mut v = Verifier::new([good, bad]);
        v.update(b"abc");
        assert_eq!(v.mismatches(), vec![Algorithm::Sha1]);
        assert!(Checksum::new(Algorithm::Sha256, vec![0; 31]).is_none());
    }

    #[test]
    fn checksums_can_come_after_the_bytes() {
        let md5 = Checksum::new(
            Algorithm::Md5,
            hex::decode("900150983cd24fb0d6963f7d28e17f72").unwrap(),
        )
        .unwrap();
        let mut v = Verifier::computing([Algorithm::Md5, Algorithm::Sha1, Algorithm::Md5]);
        v.update(b"abc");
        let sha256 = Checksum::new(Algorithm::Sha256, vec![0; 32]).unwrap();
        assert_eq!(v.expect(vec![sha256]), Err(Algorithm::Sha256));
        v.expect(vec![md5.clone()]).unwrap();
        assert!(v.clone().mismatches().is_empty());
        v.expect(vec![Checksum::new(Algorithm::Sha1, vec![1; 20]).unwrap()])
            .unwrap();
        assert_eq!(v.mismatches(), vec![Algorithm::Sha1]);
    }
    mod props {
        use proptest::prelude::*;

        use super::super::*;

        fn algorithm() -> impl Strategy<Value = Algorithm> {
            prop::sample::select(Algorithm::ALL.to_vec())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Only the four names are algorithms, and each names itself.
            #[test]
            fn algorithm_names(
                name in prop_oneof![any::<String>(), "(md|sha|SHA|sha-)[0-9]{0,4}"],
                known in algorithm(),
            ) {
                prop_assert_eq!(Algorithm::from_name(known.name()), Some(known));
                if let Some(a) = Algorithm::from_name(&name) {
                    prop_assert_eq!(a.name(), name);
                }
            }

            /// A digest is accepted at its algorithm's length alone.
            #[test]
            fn digest_lengths(algorithm in algorithm(), digest in prop::collection::vec(any::<u8>(), 0..80)) {
                let len = digest.len();
                prop_assert_eq!(
                    Checksum::new(algorithm, digest).is_some(),
                    len == algorithm.digest_len()
                );
            }

            /// Bytes cut anywhere match their own digests and no other.
            #[test]
            fn verifying_is_independent_of_cuts(
                data in prop::collection::vec(any::<u8>(), 0..2048),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
                algorithms in prop::collection::vec(algorithm(), 1..4),
                flip in any::<prop::sample::Index>(),
            ) {
                let right: Vec<Checksum> = algorithms
                    .iter()
                    .map(|&a| {
                        let mut h = Hasher::new(a);
                        h.update(&data);
                        Checksum::new(a, h.finish()).unwrap()
                    })
                    .collect();
                let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
                at.push(0);
                at.push(data.len());
                at.sort_unstable();
                let feed = |mut v: Verifier| {
                    for w in at.windows(2) {
                        v.update(&data[w[0]..w[1]]);
                    }
                    v.mismatches()
                };
                prop_assert!(feed(Verifier::new(right.clone())).is_empty());
                let mut wrong = right[0].clone();
                let i = flip.index(wrong.digest.len());
                wrong.digest[i] ^= 1;
                prop_assert_eq!(feed(Verifier::new([wrong])), vec![right[0].algorithm]);
            }
        }
    }
}
