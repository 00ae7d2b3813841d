//! Uploads one file with the client library and prints one JSON line of
//! timings; the driver of `bench/upload.sh`.
//!
//! Usage: bench_upload SERVER_URL FILE [PARALLEL]

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_upload SERVER_URL FILE [PARALLEL]");
        std::process::exit(2);
    };
    let parallel = args
        .next()
        .map_or(4, |p| p.parse().expect("PARALLEL is a number"));
    let client = tusk_client::Client::new(&server);
    let opts = tusk_client::UploadOptions {
        parallel,
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
