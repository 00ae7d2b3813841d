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

    /// Data folder: catalog, finished blobs and uploads in progress, unless
    /// `--store` and `--catalog` put them elsewhere.
    #[arg(long, env = "TUSK_DATA", default_value = "./tusk-data")]
    pub data: PathBuf,

    /// Where the bytes live: `file://PATH` (default: the data folder) or
    /// `s3://BUCKET/PREFIX` for an S3-compatible object store (see
    /// `--s3-endpoint`; credentials from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "TUSK_STORE", value_parser = StoreUrl::parse)]
    pub store: Option<StoreUrl>,

    /// Where uploads and files are recorded: `sqlite://PATH` (default:
    /// `catalog.db` in the data folder) or `postgres://USER@HOST:PORT/DB`.
    /// Several nodes share one PostgreSQL catalog and one S3 store.
    #[arg(long, env = "TUSK_CATALOG", value_parser = CatalogUrl::parse)]
    pub catalog: Option<CatalogUrl>,

    /// The S3 endpoint for stores other than AWS, e.g.
    /// `http://127.0.0.1:8333` or `https://minio.example.com`.
    #[arg(long, env = "TUSK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The S3 region.
    #[arg(long, env = "TUSK_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Path-style S3 requests (`ENDPOINT/BUCKET/KEY`), as most self-hosted
    /// stores want; `false` for virtual-hosted ones (`BUCKET.ENDPOINT/KEY`).
    /// Default: true with `--s3-endpoint`, false for AWS.
    #[arg(long, env = "TUSK_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,

    /// The most memory a node spends on S3 parts being written (each chunk
    /// in flight is held whole until it goes up as one part); further chunk
    /// writes wait for room.
    #[arg(long, env = "TUSK_S3_PART_MEMORY", default_value = "1GiB", value_parser = parse_size)]
    pub s3_part_memory: u64,

    /// Acknowledge bytes once the kernel has them instead of once they are
    /// on the disk: no fsync of chunks, blobs, folders or the SQLite
    /// catalog. Acknowledged uploads then survive a crash of tusk but not
    /// of the machine. Applies to a `file://` store and an SQLite catalog;
    /// for measurements and scratch servers, never for data you keep.
    #[arg(long, env = "TUSK_NO_FSYNC")]
    pub no_fsync: bool,

    /// The most memory spent on upload bytes between the network and the
    /// store, over all requests together (one request uses at most 1 MiB of
    /// it at a time); past it, requests wait their turn. Keeps the server's
    /// memory flat however many clients upload at once.
    #[arg(long, env = "TUSK_BUFFER_MEMORY", default_value = "32MiB", value_parser = parse_size)]
    pub buffer_memory: u64,

    /// Largest accepted file, e.g. `1TiB`, `500GB`, `1048576`.
    #[arg(long, env = "TUSK_MAX_FILE_SIZE", default_value = "1TiB", value_parser = parse_size)]
    pub max_file_size: u64,

    /// How long an unfinished upload may sit idle before it expires, e.g.
    /// `24h`, `90min`, `7days`.
    #[arg(long, env = "TUSK_UPLOAD_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub upload_ttl: Duration,

    /// How old staging or a blob that no record names must be before the
    /// sweeper discards it, e.g. `1h`, `30min`. Such leftovers come from a
    /// crash or a failed deletion; the age must outlast the moments
    /// between writing something and recording it. Lower it only while no
    /// upload is in flight (e.g. `tusk sweep --orphan-age 0s` on a stopped
    /// server).
    #[arg(long, env = "TUSK_ORPHAN_AGE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub orphan_age: Duration,

    /// Serve without tokens on an address other than loopback: anyone who
    /// reaches the server may upload, list, download and delete. Without
    /// this flag, a server with no tokens (`tusk token create`) refuses to
    /// listen beyond loopback, and answers only requests addressed to a
    /// loopback name or to `--public-url`.
    #[arg(long, env = "TUSK_PUBLIC_UPLOADS")]
    pub public_uploads: bool,

    /// The URL clients reach the server at, e.g. `https://files.example.com`
    /// behind a reverse proxy. A server without tokens answers requests
    /// addressed to its host (besides loopback names), and pages of its
    /// origin.
    #[arg(long, env = "TUSK_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// The most unfinished uploads one owner may have at once; past it,
    /// new uploads are refused with 429 until some finish or expire.
    #[arg(long, env = "TUSK_MAX_UPLOADS_PER_OWNER", default_value_t = 1000)]
    pub max_uploads_per_owner: u32,

    /// How many proofs of possession (instant upload of another owner's
    /// content) one owner may have checked per minute on this node; past
    /// it, proofs are answered as not holding and the client uploads.
    #[arg(long, env = "TUSK_PROOFS_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub proofs_per_minute: u32,

    /// How long a request body may send nothing before the request is cut
    /// off with 408, e.g. `30s`.
    #[arg(long, env = "TUSK_BODY_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// The slowest a request body may arrive, averaged over each stretch
    /// of `--body-timeout` the server spends waiting for it, e.g. `1KiB`
    /// (per second); slower clients are cut off with 408. `0` turns the
    /// check off.
    #[arg(long, env = "TUSK_MIN_RATE", default_value = "1KiB", value_parser = parse_size)]
    pub min_rate: u64,

    /// An origin whose pages may use this server from a browser (CORS),
    /// e.g. `https://app.example.com`; repeat the flag (or separate with
    /// commas) for several. Without any, pages of every origin may once the
    /// server has tokens (a page must still send one), and none while it
    /// has none.
    #[arg(long = "cors-origin", env = "TUSK_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
}

impl ServeConfig {
    /// The defaults, serving `data`.
    pub fn new(data: PathBuf) -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data,
            store: None,
            catalog: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_path_style: None,
            s3_part_memory: tusk_store::s3::DEFAULT_PART_MEMORY,
            no_fsync: false,
            buffer_memory: 32 << 20,
            max_file_size: 1 << 40,
            upload_ttl: Duration::from_secs(24 * 3600),
            orphan_age: tusk_core::service::ORPHAN_AGE,
            public_uploads: false,
            public_url: None,
            max_uploads_per_owner: 1000,
            proofs_per_minute: 30,
            body_timeout: Duration::from_secs(60),
            min_rate: 1024,
            cors_origins: Vec::new(),
        }
    }

    /// The store to use: `--store`, or the data folder.
    pub fn store_url(&self) -> StoreUrl {
        self.store
            .clone()
            .unwrap_or_else(|| StoreUrl::File(self.data.clone()))
    }

    /// The catalog to use: `--catalog`, or `catalog.db` in the data folder.
    pub fn catalog_url(&self) -> CatalogUrl {
        self.catalog
            .clone()
            .unwrap_or_else(|| CatalogUrl::Sqlite(self.data.join("catalog.db")))
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_file_size: self.max_file_size,
            upload_ttl: self.upload_ttl,
            buffer_memory: self.buffer_memory,
            max_uploads: self.max_uploads_per_owner,
            body_idle_timeout: self.body_timeout,
            proofs_per_minute: self.proofs_per_minute,
            orphan_age: self.orphan_age,
            ..Limits::default()
        }
    }
}

/// Where the bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A folder on local disk.
    File(PathBuf),
    /// An S3 bucket and a key prefix in it.
    S3 { bucket: String, prefix: String },
}

impl StoreUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a folder, e.g. file:///srv/tusk".into());
            }
            return Ok(StoreUrl::File(PathBuf::from(path)));
        }
        if s.starts_with("s3://") {
            let (bucket, prefix) = tusk_store::S3Config::parse_url(s)?;
            return Ok(StoreUrl::S3 { bucket, prefix });
        }
        Err(format!(
            "{s:?} is not a store; write file://PATH or s3://BUCKET/PREFIX"
        ))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::File(path) => write!(f, "file://{}", path.display()),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Where uploads and files are recorded.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (it may hold a password).
    Postgres(String),
}

impl CatalogUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file, e.g. sqlite:///srv/tusk/catalog.db".into());
            }
            return Ok(CatalogUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(CatalogUrl::Postgres(s.to_owned()));
        }
        Err(format!(
            "{} is not a catalog; write sqlite://PATH or postgres://USER@HOST:PORT/DB",
            redact(s)
        ))
    }
}

/// Shown without any password.
impl std::fmt::Display for CatalogUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            CatalogUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl std::fmt::Debug for CatalogUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CatalogUrl({self})")
    }
}

/// A URL with the password of its `user:password@` part replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
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

/// Parses the URL clients reach the server at: `http://` or `https://`, a
/// host, maybe a port and a path; no query. Kept without a final `/`.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = |why: &str| {
        format!("{s:?} is not a public URL ({why}); write e.g. https://files.example.com")
    };
    let uri: axum::http::Uri = s.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("it starts with http:// or https://"));
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => return Err(bad("it names a host")),
    }
    if uri.query().is_some() {
        return Err(bad("it has no query"));
    }
    Ok(s.trim_end_matches('/').to_owned())
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
    fn stores_and_catalogs() {
        assert_eq!(
            StoreUrl::parse("s3://uploads/tusk").unwrap(),
            StoreUrl::S3 {
                bucket: "uploads".into(),
                prefix: "tusk".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///srv/tusk").unwrap(),
            StoreUrl::File("/srv/tusk".into())
        );
        for bad in ["/srv/tusk", "s3://", "gs://b/p", "file://"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
        let pg = CatalogUrl::parse("postgres://tusk:hunter2@db:5432/tusk?sslmode=disable").unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://tusk:***@db:5432/tusk?sslmode=disable"
        );
        assert!(!format!("{pg:?}").contains("hunter2"));
        let err = CatalogUrl::parse("mysql://u:hunter2@db/x").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(
            CatalogUrl::parse("sqlite:///srv/c.db").unwrap(),
            CatalogUrl::Sqlite("/srv/c.db".into())
        );
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            parse_public_url("https://files.example.com/").as_deref(),
            Ok("https://files.example.com")
        );
        assert!(parse_public_url("http://10.0.0.5:8080/tusk").is_ok());
        for bad in [
            "files.example.com",
            "ftp://a.example",
            "https://",
            "https://a.example/?x=1",
            "https://u@a.example",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
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
