//! The JSON shapes of the API: upload and file objects.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tusk_core::model::{FileRecord, Timestamp, Upload};
use tusk_core::name::base_name;

use super::AppState;
use super::error::ApiResult;

/// How long the link in a file object works when the file is neither
/// public nor on a server without tokens.
pub const LINK_TTL: Duration = Duration::from_secs(24 * 3600);

/// An upload as the API shows it.
#[derive(Serialize)]
pub struct UploadView {
    pub id: String,
    pub name: String,
    /// `null` while the length is deferred.
    pub size: Option<u64>,
    /// The claimed hash; `null` for uploads that did not claim one.
    pub hash: Option<String>,
    pub chunk_size: u64,
    pub chunk_count: Option<u32>,
    pub received: Vec<u32>,
    pub expires_at: Timestamp,
    /// The file the upload completed into; `null` until then.
    pub file_id: Option<String>,
}

impl From<&Upload> for UploadView {
    fn from(u: &Upload) -> Self {
        UploadView {
            id: u.id.to_string(),
            name: u.name.clone(),
            size: u.size,
            hash: u.claims.hash.map(|h| h.to_string()),
            chunk_size: u.chunk_size,
            chunk_count: u.chunk_count(),
            received: u.received.clone(),
            expires_at: u.expires_at,
            file_id: u.file.as_ref().map(|f| f.to_string()),
        }
    }
}

/// A file as the API shows it.
#[derive(Serialize)]
pub struct FileView {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub created_at: Timestamp,
    /// Whether anyone may download it.
    pub public: bool,
    /// Where the file downloads (a path on this server): signed, for a
    /// day, unless the file is public or the server has no tokens.
    pub url: String,
}

impl FileView {
    /// The file as its owner sees it, with a link that works without a
    /// token where one is needed.
    pub async fn of(app: &AppState, f: &FileRecord) -> ApiResult<FileView> {
        let mut view = FileView::plain(f);
        if !f.public && !app.service.is_open().await? {
            let expires = unix_now() + LINK_TTL.as_secs();
            let query = app.service.sign_link(&f.id, expires).await?;
            view.url = format!("{}?{query}", view.url);
        }
        Ok(view)
    }

    pub async fn all(app: &AppState, files: &[FileRecord]) -> ApiResult<Vec<FileView>> {
        let mut views = Vec::with_capacity(files.len());
        for f in files {
            views.push(FileView::of(app, f).await?);
        }
        Ok(views)
    }

    /// The file with its plain download path.
    fn plain(f: &FileRecord) -> Self {
        FileView {
            id: f.id.to_string(),
            name: f.name.clone(),
            size: f.blob.size,
            mime: f.mime.clone(),
            hash: f.blob.hash.to_string(),
            // What this file's owner claimed and had verified, never what
            // the shared content is known to hash to from others' claims.
            md5: f.md5.map(hex::encode),
            sha256: f.sha256.map(hex::encode),
            created_at: f.created_at,
            public: f.public,
            url: download_path(f),
        }
    }
}

/// Seconds since the epoch, as signed links count time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/files/{id}/{base name}`: the name makes `curl -O` and browsers save
/// the file under its own name; the server only looks at the id.
pub fn download_path(f: &FileRecord) -> String {
    let name = percent_encoding::utf8_percent_encode(base_name(&f.name), PATH_SEGMENT);
    format!("/files/{}/{}", f.id, name)
}

/// Characters escaped in a path segment (RFC 3986 `pchar` keeps the rest).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
