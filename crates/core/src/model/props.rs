//! Properties of the ids and chunk arithmetic that client input reaches:
//! an id is accepted only in the shape the server hands out, and a chunk
//! index of any size names bytes inside its upload or nothing.

use proptest::prelude::*;

use super::*;
use crate::hash::BLOCK_SIZE;
use crate::service::pick_chunk_size;

fn upload(size: u64, chunk_size: u64) -> Upload {
    Upload {
        id: UploadId::random(),
        owner: Owner::local(),
        name: "a".into(),
        mime: "x/y".into(),
        size: Some(size),
        claims: Claims::default(),
        chunk_size,
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
        received: Vec::new(),
    }
}

/// Sizes of every magnitude, the edges included.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=3 * BLOCK_SIZE,
        any::<u64>(),
        (0..64u32).prop_map(|bits| 1u64 << bits),
        Just(u64::MAX),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// An id is exactly 32 lowercase hex digits, and prints as sent.
    #[test]
    fn ids_parse_only_their_shape(
        text in prop_oneof![any::<String>(), "[0-9a-fA-F./]{30,34}"],
    ) {
        let parsed = FileId::parse(&text);
        prop_assert_eq!(
            parsed.is_some(),
            text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        if let Some(id) = parsed {
            prop_assert_eq!(id.to_string(), text);
        }
    }

    /// Whatever chunk index a client names, for an upload of any
    /// size: no overflow, and a chunk that exists lies inside the
    /// upload, at its index's place.
    #[test]
    fn chunks_lie_inside_their_upload(
        size in size(),
        index in prop_oneof![any::<u32>(), 0..20u32, Just(u32::MAX)],
    ) {
        let chunk_size = pick_chunk_size(size, None, BLOCK_SIZE).unwrap();
        let u = upload(size, chunk_size);
        let count = u.chunk_count().unwrap();
        match u.chunk(index) {
            Some(c) => {
                prop_assert!(index < count);
                prop_assert_eq!(c.offset, u64::from(index) * chunk_size);
                prop_assert!(c.len >= 1 && c.len <= chunk_size);
                prop_assert!(c.offset < size && size - c.offset >= c.len);
            }
            None => prop_assert!(index >= count),
        }
    }
}

/// The largest upload: a chunk index past its last chunk once made an
/// offset that overflowed 64 bits (a panic in debug builds, a wrong offset
/// in release builds) instead of naming no chunk.
#[test]
fn an_index_past_the_end_of_a_huge_upload_is_no_chunk() {
    let chunk_size = pick_chunk_size(u64::MAX, None, BLOCK_SIZE).unwrap();
    let u = upload(u64::MAX, chunk_size);
    assert_eq!(u.chunk_count(), Some(10_000));
    assert_eq!(u.chunk(10_000), None);
    assert_eq!(u.chunk(u32::MAX), None);
    assert_eq!(u.chunk(9_999).unwrap().offset, 9_999 * chunk_size);
}
