//! The settings of `tusk serve`: each a flag, each also an environment
//! variable (`TUSK_…`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tusk_core::Limits;

/// How `tusk serve` runs.
#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TUSK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Data folder: catalog, finished blobs and uploads in progress.
    #[arg(long, env = "TUSK_DATA", default_value = "./tusk-data")]
    pub data: PathBuf,

    /// Largest accepted file, e.g. `1TiB`, `500GB`, `1048576`.
    #[arg(long, env = "TUSK_MAX_FILE_SIZE", default_value = "1TiB", value_parser = parse_size)]
    pub max_file_size: u64,
}

impl ServeConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_file_size: self.max_file_size,
            ..Limits::default()
        }
    }
}

/// Parses a byte size: a plain number of bytes or a number with a unit
/// (`KB`, `MiB`, `GiB`, `TiB`, …).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| "not a size; write e.g. 1TiB, 500GB or 1048576".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("5 MiB"), Ok(5 << 20));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
    }
}
