//! One method per call of the JSON API, with typed responses. A refusal
//! from the server arrives as [`ClientError::Refused`] with its stable code.

use bytes::Bytes;
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// An upload as the server describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: String,
    pub name: String,
    pub size: Option<u64>,
    pub hash: Option<String>,
    pub chunk_size: u64,
    pub chunk_count: Option<u32>,
    pub received: Vec<u32>,
    pub expires_at: String,
}

impl UploadInfo {
    /// Chunk indexes the server does not have yet.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.chunk_count.unwrap_or(0))
            .filter(|i| self.received.binary_search(i).is_err())
            .collect()
    }
}

/// How the server can check a chunk before it records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCheck {
    /// No check per chunk; the whole-file hash still guards completion.
    None,
    /// The chunk's own `sha256-4m` hash (`Chunk-Hash`): free on both sides,
    /// since both have the block digests anyway.
    ChunkHash(tusk_core::ContentHash),
    /// RFC 9530 `Content-Digest` (SHA-256): standard, but one more SHA-256
    /// pass on each side.
    ContentDigest,
}

/// A stored file as the server describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub hash: String,
    pub md5: Option<String>,
    pub sha256: Option<String>,
    pub created_at: String,
    pub url: String,
}

/// What a check by content hash answered.
#[derive(Debug, Clone)]
pub enum Checked {
    /// Stored already: the file exists now, nothing to send.
    Instant(FileInfo),
    /// Send the missing chunks of this upload (`resumed`: it existed).
    Uploading { upload: UploadInfo, resumed: bool },
}

/// What describes a file to the check.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    pub name: String,
    pub size: u64,
    pub hash: String,
    pub md5: Option<String>,
    pub sha256: Option<String>,
    pub mime: Option<String>,
    pub chunk_size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused ({status}, {code}): {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The stable error code of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A connection to one tusk server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct CheckBody {
    status: String,
    upload: Option<UploadInfo>,
    file: Option<FileInfo>,
}

#[derive(Deserialize)]
struct UploadBody {
    upload: UploadInfo,
}

#[derive(Deserialize)]
struct FileBody {
    file: FileInfo,
}

/// A page of the file listing.
#[derive(Debug, Clone, Deserialize)]
pub struct FilePage {
    pub files: Vec<FileInfo>,
    pub next_cursor: Option<String>,
}

async fn parse<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<(StatusCode, T), ClientError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (
                "unknown".to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ),
        };
        return Err(ClientError::Refused {
            status,
            code,
            message,
        });
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((status, value))
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/v1/uploads`: the check.
    pub async fn check(&self, req: &NewUpload) -> Result<Checked, ClientError> {
        let mut body = json!({ "name": req.name, "size": req.size, "hash": req.hash });
        for (key, value) in [
            ("md5", &req.md5),
            ("sha256", &req.sha256),
            ("mime", &req.mime),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        if let Some(cs) = req.chunk_size {
            body["chunk_size"] = json!(cs);
        }
        let response = self
            .http
            .post(self.url("/api/v1/uploads"))
            .json(&body)
            .send()
            .await?;
        let (status, body): (_, CheckBody) = parse(response).await?;
        match (body.status.as_str(), body.file, body.upload) {
            ("complete", Some(file), _) => Ok(Checked::Instant(file)),
            ("uploading", _, Some(upload)) => Ok(Checked::Uploading {
                upload,
                resumed: status == StatusCode::OK,
            }),
            (other, _, _) => Err(ClientError::Protocol(format!(
                "unknown check status {other:?}"
            ))),
        }
    }

    pub async fn upload(&self, id: &str) -> Result<UploadInfo, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/uploads/{id}")))
            .send()
            .await?;
        Ok(parse::<UploadBody>(response).await?.1.upload)
    }

    /// `PUT` one chunk with the integrity check `check`.
    pub async fn put_chunk(
        &self,
        id: &str,
        index: u32,
        bytes: Bytes,
        check: ChunkCheck,
    ) -> Result<UploadInfo, ClientError> {
        let url = self.url(&format!("/api/v1/uploads/{id}/chunks/{index}"));
        let mut request = self.http.put(url);
        match check {
            ChunkCheck::None => {}
            ChunkCheck::ChunkHash(hash) => request = request.header("chunk-hash", hash.to_string()),
            ChunkCheck::ContentDigest => {
                request = request.header("content-digest", content_digest(&bytes))
            }
        }
        let response = request.body(bytes).send().await?;
        Ok(parse::<UploadBody>(response).await?.1.upload)
    }

    pub async fn complete(&self, id: &str) -> Result<FileInfo, ClientError> {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/uploads/{id}/complete")))
            .send()
            .await?;
        Ok(parse::<FileBody>(response).await?.1.file)
    }

    pub async fn delete_upload(&self, id: &str) -> Result<(), ClientError> {
        let response = self
            .http
            .delete(self.url(&format!("/api/v1/uploads/{id}")))
            .send()
            .await?;
        no_content(response).await
    }

    pub async fn file(&self, id: &str) -> Result<FileInfo, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/files/{id}")))
            .send()
            .await?;
        Ok(parse::<FileBody>(response).await?.1.file)
    }

    pub async fn list_files(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<FilePage, ClientError> {
        let mut request = self
            .http
            .get(self.url("/api/v1/files"))
            .query(&[("limit", limit.to_string())]);
        if let Some(c) = cursor {
            request = request.query(&[("cursor", c)]);
        }
        Ok(parse::<FilePage>(request.send().await?).await?.1)
    }

    pub async fn delete_file(&self, id: &str) -> Result<(), ClientError> {
        let response = self
            .http
            .delete(self.url(&format!("/api/v1/files/{id}")))
            .send()
            .await?;
        no_content(response).await
    }

    /// The whole content of a file.
    pub async fn download(&self, file: &FileInfo) -> Result<Bytes, ClientError> {
        let response = self.http.get(self.url(&file.url)).send().await?;
        if !response.status().is_success() {
            return Err(parse::<serde_json::Value>(response)
                .await
                .err()
                .unwrap_or_else(|| ClientError::Protocol("download failed".into())));
        }
        Ok(response.bytes().await?)
    }
}

async fn no_content(response: reqwest::Response) -> Result<(), ClientError> {
    if response.status().is_success() {
        return Ok(());
    }
    Err(parse::<serde_json::Value>(response)
        .await
        .err()
        .unwrap_or_else(|| ClientError::Protocol("unexpected success body".into())))
}

/// The RFC 9530 `Content-Digest` of some bytes (SHA-256).
pub fn content_digest(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}
