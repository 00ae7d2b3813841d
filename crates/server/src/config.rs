//! The settings of `tusk serve`: each a flag, each also an environment
//! variable (`TUSK_…`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

    /// How long an unfinished upload may sit idle before it expires, e.g.
    /// `24h`, `90min`, `7days`.
    #[arg(long, env = "TUSK_UPLOAD_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub upload_ttl: Duration,

    /// An origin whose pages may use this server from a browser (CORS),
    /// e.g. `https://app.example.com`; repeat the flag (or separate with
    /// commas) for several. Without any, pages of every origin may, without
    /// credentials.
    #[arg(long = "cors-origin", env = "TUSK_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
}

impl ServeConfig {
    /// The defaults, serving `data`.
    pub fn new(data: PathBuf) -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data,
            max_file_size: 1 << 40,
            upload_ttl: Duration::from_secs(24 * 3600),
            cors_origins: Vec::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_file_size: self.max_file_size,
            upload_ttl: self.upload_ttl,
            ..Limits::default()
        }
    }
}

/// Parses a web origin: `scheme://host[:port]`, nothing after.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not an origin; write e.g. https://app.example.com");
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let host_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !scheme_ok || !host_ok {
        return Err(bad());
    }
    Ok(s.to_owned())
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

    #[test]
    fn origins() {
        assert!(parse_origin("https://app.example.com").is_ok());
        assert!(parse_origin("http://127.0.0.1:5173").is_ok());
        for bad in ["app.example.com", "https://a.example/path", "https://", "*"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
