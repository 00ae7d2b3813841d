//! One method per call of the JSON API, with typed responses. A refusal
//! from the server arrives as [`ClientError::Refused`] with its stable code.

use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkCheck {
    /// No check per chunk; the whole-file hash still guards completion.
    None,
    /// The chunk's own `sha256-4m` hash (`Chunk-Hash`): free on both sides,
    /// since both have the block digests anyway.
    ChunkHash(tusk_core::ContentHash),
    /// RFC 9530 `Content-Digest` (SHA-256), as [`content_digest`] gives
    /// it: standard, but one more SHA-256 pass on each side.
    ContentDigest(String),
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
    /// Send the missing chunks of this upload (`resumed`: it existed), or
    /// answer the challenge to be spared sending them.
    Uploading {
        upload: UploadInfo,
        resumed: bool,
        challenge: Option<Challenge>,
    },
}

/// What the server asks a client to hash to prove it holds the content:
/// SHA-256(nonce ‖ block) for each block index, in order.
#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    /// 16 bytes, hex.
    pub nonce: String,
    pub blocks: Vec<u64>,
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
    /// Sent as `Idempotency-Key`: a check repeated with the same key (its
    /// answer was lost) answers with the file an instant upload recorded
    /// the first time, instead of recording another.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused ({status}, {code}): {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
        /// `missing` of a `missing_chunks` refusal.
        missing: Vec<u32>,
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
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

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed: the network
    /// failed, the server failed (5xx, but not 507: a full disk stays
    /// full), or it asked to come back (408, 423, 429, 409 `conflict`).
    /// Any other refusal is the request's fault and is not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            // A request that could not even be built fails the same way again.
            ClientError::Transport(e) => !e.is_builder(),
            ClientError::Refused { status, code, .. } => {
                (status.is_server_error() && *status != StatusCode::INSUFFICIENT_STORAGE)
                    || matches!(status.as_u16(), 408 | 423 | 429)
                    || (*status == StatusCode::CONFLICT && code == "conflict")
            }
            ClientError::Io(_) | ClientError::Protocol(_) => false,
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
    #[serde(default)]
    missing: Vec<u32>,
}

#[derive(Deserialize)]
struct CheckBody {
    status: String,
    upload: Option<UploadInfo>,
    file: Option<FileInfo>,
    challenge: Option<Challenge>,
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

fn checked(resumed: bool, body: CheckBody) -> Result<Checked, ClientError> {
    match (body.status.as_str(), body.file, body.upload) {
        ("complete", Some(file), _) => Ok(Checked::Instant(file)),
        ("uploading", _, Some(upload)) => Ok(Checked::Uploading {
            upload,
            resumed,
            challenge: body.challenge,
        }),
        (other, _, _) => Err(ClientError::Protocol(format!(
            "unknown check status {other:?}"
        ))),
    }
}

/// The refusal a non-success response carries.
async fn refusal(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return ClientError::Transport(e),
    };
    let (code, message, missing) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(b) => (b.error.code, b.error.message, b.error.missing),
        Err(_) => (
            "unknown".to_owned(),
            String::from_utf8_lossy(&bytes).trim().to_owned(),
            Vec::new(),
        ),
    };
    ClientError::Refused {
        status,
        code,
        message,
        missing,
        retry_after,
    }
}

async fn parse<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<(StatusCode, T), ClientError> {
    let status = response.status();
    if !status.is_success() {
        return Err(refusal(response).await);
    }
    let bytes = response.bytes().await?;
    let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((status, value))
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self::with_token(base, None)
    }

    /// A client that sends `token` as `Authorization: Bearer …` with every
    /// request (a server with tokens needs one).
    pub fn with_token(base: &str, token: Option<&str>) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token
            && let Ok(mut value) =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            // A peer that vanished (network loss) is noticed instead of
            // waited for forever.
            .tcp_keepalive(Duration::from_secs(15))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client with default TLS-free settings");
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of a server path (a file's `url`).
    pub fn absolute(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            self.url(path)
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
        let mut request = self.http.post(self.url("/api/v1/uploads")).json(&body);
        if let Some(key) = &req.idempotency_key {
            request = request.header("idempotency-key", sf_string(key)?);
        }
        let (status, body): (_, CheckBody) = parse(request.send().await?).await?;
        checked(status == StatusCode::OK, body)
    }

    /// `POST /api/v1/uploads/{id}/proof`: the answers to the challenge,
    /// with the check's idempotency key (the file it records gets the id
    /// an instant upload with that key would).
    pub async fn prove(
        &self,
        id: &str,
        digests: &[String],
        key: Option<&str>,
    ) -> Result<Checked, ClientError> {
        let mut request = self
            .http
            .post(self.url(&format!("/api/v1/uploads/{id}/proof")))
            .json(&json!({ "digests": digests }));
        if let Some(key) = key {
            request = request.header("idempotency-key", sf_string(key)?);
        }
        let response = request.send().await?;
        let (_, body): (_, CheckBody) = parse(response).await?;
        checked(true, body)
    }

    pub async fn upload(&self, id: &str) -> Result<UploadInfo, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/uploads/{id}")))
            .send()
            .await?;
        Ok(parse::<UploadBody>(response).await?.1.upload)
    }

    /// `PUT` one chunk of `len` bytes with the integrity check `check`.
    pub async fn put_chunk(
        &self,
        id: &str,
        index: u32,
        body: impl Into<reqwest::Body>,
        len: u64,
        check: ChunkCheck,
    ) -> Result<UploadInfo, ClientError> {
        let url = self.url(&format!("/api/v1/uploads/{id}/chunks/{index}"));
        let mut request = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, len);
        match check {
            ChunkCheck::None => {}
            ChunkCheck::ChunkHash(hash) => request = request.header("chunk-hash", hash.to_string()),
            ChunkCheck::ContentDigest(digest) => request = request.header("content-digest", digest),
        }
        let response = request.body(body).send().await?;
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

    /// One page of the owner's files, newest first; `search` keeps the
    /// names containing it.
    pub async fn list_files(
        &self,
        cursor: Option<&str>,
        limit: u32,
        search: Option<&str>,
    ) -> Result<FilePage, ClientError> {
        let mut request = self
            .http
            .get(self.url("/api/v1/files"))
            .query(&[("limit", limit.to_string())]);
        if let Some(c) = cursor {
            request = request.query(&[("cursor", c)]);
        }
        if let Some(q) = search {
            request = request.query(&[("q", q)]);
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
            return Err(refusal(response).await);
        }
        Ok(response.bytes().await?)
    }

    /// `GET` a file's content from byte `from` on. With `from > 0` the
    /// request carries `Range` and `If-Range: "<etag>"`, so the answer is
    /// `206` from `from` while the content is still the one of `etag`, and
    /// `200` with the whole content otherwise: look at the status.
    pub async fn get_content(
        &self,
        file: &FileInfo,
        from: u64,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.get(self.url(&file.url));
        if from > 0 {
            let etag = file.hash.trim_start_matches("sha256-4m:");
            request = request
                .header(reqwest::header::RANGE, format!("bytes={from}-"))
                .header(reqwest::header::IF_RANGE, format!("\"{etag}\""));
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        Ok(response)
    }

    /// `POST /api/v1/files`: whole files in one `multipart/form-data`
    /// request; the files come back in the order given. With `key` (an
    /// `Idempotency-Key`), sending the same files with the same key again
    /// answers with the files recorded the first time instead of recording
    /// them twice: what makes a retry after a lost answer safe.
    pub async fn post_files(
        &self,
        files: Vec<FormFile>,
        key: Option<&str>,
    ) -> Result<Vec<FileInfo>, ClientError> {
        let mut form = reqwest::multipart::Form::new();
        for f in files {
            let mut part =
                reqwest::multipart::Part::stream_with_length(f.bytes.clone(), f.bytes.len() as u64)
                    .file_name(f.name);
            if let Some(m) = f.mime {
                part = part
                    .mime_str(&m)
                    .map_err(|e| ClientError::Protocol(format!("bad media type {m:?}: {e}")))?;
            }
            form = form.part("file", part);
        }
        let mut request = self.http.post(self.url("/api/v1/files")).multipart(form);
        if let Some(key) = key {
            request = request.header("idempotency-key", sf_string(key)?);
        }
        let response = request.send().await?;
        Ok(parse::<FilesBody>(response).await?.1.files)
    }
}

/// `key` as a structured-field string (`"…"`), as `Idempotency-Key` wants.
fn sf_string(key: &str) -> Result<String, ClientError> {
    if key.is_empty() || !key.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(ClientError::Protocol(format!(
            "an idempotency key is printable ASCII: {key:?}"
        )));
    }
    Ok(format!(
        "\"{}\"",
        key.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A whole small file for [`Client::post_files`].
#[derive(Debug, Clone)]
pub struct FormFile {
    pub name: String,
    pub mime: Option<String>,
    pub bytes: Bytes,
}

#[derive(Deserialize)]
struct FilesBody {
    files: Vec<FileInfo>,
}

async fn no_content(response: reqwest::Response) -> Result<(), ClientError> {
    if response.status().is_success() {
        return Ok(());
    }
    Err(refusal(response).await)
}

/// The RFC 9530 `Content-Digest` of some bytes (SHA-256).
pub fn content_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format_digest(&sha2::Sha256::digest(bytes))
}

/// A SHA-256 digest as an RFC 9530 `Content-Digest` value.
pub fn format_digest(sha256: &[u8]) -> String {
    use base64::Engine;
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha256)
    )
}
