//! Uploads one file with the client library and prints one JSON line of
//! timings; the driver of `bench/upload.sh`.
//!
//! Usage: bench_upload SERVER_URL FILE [PARALLEL] [CHECK: chunk-hash|content-digest|none]

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(path)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: bench_upload SERVER_URL FILE [PARALLEL] [CHECK: chunk-hash|content-digest|none]"
        );
        std::process::exit(2);
    };
    let parallel = args
        .next()
        .map_or(4, |p| p.parse().expect("PARALLEL is a number"));
    let check = match args.next().as_deref() {
        None | Some("chunk-hash") => tusk_client::Check::ChunkHash,
        Some("content-digest") => tusk_client::Check::ContentDigest,
        Some("none") => tusk_client::Check::None,
        Some(other) => {
            eprintln!("bench_upload: unknown check {other:?}");
            std::process::exit(2);
        }
    };
    let client = tusk_client::Client::new(&server);
    let opts = tusk_client::UploadOptions {
        parallel,
        check,
        ..Default::default()
    };
    match tusk_client::upload_file(&client, &PathBuf::from(&path), &opts).await {
        Ok(r) => println!(
            "{{\"size\":{},\"chunks\":{},\"instant\":{},\"hash_s\":{:.4},\"transfer_s\":{:.4}}}",
            r.file.size,
            r.chunks_sent,
            r.instant,
            r.hashing.as_secs_f64(),
            r.transfer.as_secs_f64()
        ),
        Err(e) => {
            eprintln!("bench_upload: {e}");
            std::process::exit(1);
        }
    }
}
