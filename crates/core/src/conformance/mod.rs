//! Conformance suites: what every `BlobStore` and `Catalog` backend must do.
//!
//! A backend crate runs them from its tests with one macro line, giving an
//! async function that makes a fresh, empty backend plus whatever must live
//! as long as it (a temporary directory, a database):
//!
//! ```text
//! tusk_core::blob_store_conformance!(fresh_store);
//! tusk_core::catalog_conformance!(fresh_catalog);
//! ```
//!
//! Each case becomes its own `#[tokio::test]`, so a failure names the rule.

pub mod catalog;
pub mod store;

use bytes::Bytes;

/// Deterministic test content: byte `i` of a stream seeded with `seed`.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64 * 97) as u8
                ^ (i >> 13) as u8
        })
        .collect()
}

/// Collects a byte stream into memory.
pub async fn collect(mut stream: crate::store::ByteStream) -> std::io::Result<Vec<u8>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out)
}

/// Splits `data` into pieces of `piece` bytes.
pub fn pieces(data: &[u8], piece: usize) -> Vec<Bytes> {
    data.chunks(piece).map(Bytes::copy_from_slice).collect()
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($suite:path, $make:path, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (backend, _keep) = $make().await;
                { use $suite as suite; suite::$case(backend).await; }
            }
        )*
    };
}

/// Runs the `BlobStore` conformance suite against the backend `$make`
/// returns: `async fn() -> (Arc<dyn BlobStore>, impl Sized)`.
#[macro_export]
macro_rules! blob_store_conformance {
    ($make:path) => {
        mod blob_store_conformance {
            use super::*;
            $crate::__conformance_cases!(
                $crate::conformance::store,
                $make,
                [
                    chunks_in_any_order_then_commit,
                    writes_stay_inside_their_chunk,
                    appends_continue_a_chunk,
                    a_continued_chunk_keeps_only_what_it_continues,
                    commit_is_idempotent,
                    abort_discards_staging,
                    delete_removes_a_blob,
                    empty_blob,
                    reading_what_is_not_there,
                    put_blobs_stores_whole_blobs,
                    put_blobs_are_blobs_like_any,
                    staged_uploads_are_listed_until_they_end,
                    blobs_are_listed_by_age,
                ]
            );
        }
    };
}

/// Runs the `Catalog` conformance suite against the backend `$make`
/// returns: `async fn() -> (Arc<dyn Catalog>, impl Sized)`.
#[macro_export]
macro_rules! catalog_conformance {
    ($make:path) => {
        mod catalog_conformance {
            use super::*;
            $crate::__conformance_cases!(
                $crate::conformance::catalog,
                $make,
                [
                    upload_round_trip,
                    ended_uploads_are_remembered,
                    finals_are_found_by_their_parts,
                    expired_uploads_are_found_soonest_first,
                    staging_in_use_follows_the_uploads,
                    blobs_in_use_follow_the_records,
                    chunks_are_recorded_once,
                    recording_needs_the_upload,
                    resumable_uploads_are_found_by_owner_hash_and_size,
                    uploads_are_relabelled_touched_and_reserved,
                    appends_compare_and_set_the_offset,
                    deferred_length_is_set_once_known,
                    deleting_an_upload_forgets_its_chunks,
                    completion_stores_blob_and_file,
                    same_content_is_stored_once,
                    completion_fills_in_verified_checksums,
                    instant_files_reference_existing_blobs,
                    batches_record_every_file_in_order,
                    batches_are_all_or_nothing,
                    files_are_deleted_by_their_owner_only,
                    listing_pages_newest_first,
                    locks_are_exclusive,
                    try_lock_does_not_wait,
                    tokens_are_found_by_their_hash_until_revoked,
                    accounts_keep_their_quota_and_admin,
                    revoking_the_last_token_does_not_open_up,
                    the_signing_key_is_stored_once,
                    owned_blobs_need_a_file_of_the_owner,
                    files_are_made_public_by_their_owner_only,
                    usage_counts_files_and_unfinished_uploads,
                    usage_counts_finals_beyond_their_parts,
                    files_show_their_own_verified_digests,
                ]
            );
        }
    };
}
