//! One owner's side of a conversation with a server that has tokens.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{MIB, TestServer, hash, hex};

/// An owner with a token, speaking to `server`.
pub struct Who<'a> {
    pub server: &'a TestServer,
    pub token: String,
}

impl<'a> Who<'a> {
    /// A new owner `name` with a token and no quota.
    pub async fn new(server: &'a TestServer, name: &str) -> Self {
        Self::with_quota(server, name, None).await
    }

    /// A token for owner `name`; `quota` sets the owner's quota.
    pub async fn with_quota(server: &'a TestServer, name: &str, quota: Option<u64>) -> Self {
        let issued = server
            .service
            .create_token(name, quota, false)
            .await
            .unwrap();
        Who {
            server,
            token: issued.secret,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
    }

    /// A tus request (with `Tus-Resumable`) to `path` or an absolute URL.
    pub fn tus(&self, method: Method, path: &str) -> RequestBuilder {
        let path = path.strip_prefix(&self.server.base).unwrap_or(path);
        self.req(method, path).header("tus-resumable", "1.0.0")
    }

    pub async fn send(&self, rb: RequestBuilder) -> (StatusCode, Value) {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let body = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The check that starts the flow, with extra fields in `more`.
    pub async fn check_with(&self, name: &str, data: &[u8], more: Value) -> (StatusCode, Value) {
        let mut body = json!({ "name": name, "size": data.len(), "hash": hash(data) });
        if let (Some(body), Value::Object(more)) = (body.as_object_mut(), more) {
            body.extend(more);
        }
        self.send(self.req(Method::POST, "/api/v1/uploads").json(&body))
            .await
    }

    pub async fn check(&self, name: &str, data: &[u8]) -> (StatusCode, Value) {
        self.check_with(name, data, Value::Null).await
    }

    /// Sends every chunk of `data` into upload `up` (an upload object).
    pub async fn send_chunks(&self, up: &Value, data: &[u8]) {
        let id = up["id"].as_str().unwrap();
        let cs = up["chunk_size"].as_u64().unwrap() as usize;
        for (i, chunk) in data.chunks(cs).enumerate() {
            let (status, body) = self
                .send(
                    self.req(Method::PUT, &format!("/api/v1/uploads/{id}/chunks/{i}"))
                        .body(chunk.to_vec()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    pub async fn complete(&self, id: &str) -> (StatusCode, Value) {
        self.send(self.req(Method::POST, &format!("/api/v1/uploads/{id}/complete")))
            .await
    }

    /// The whole flow: check, chunks, complete; the file object.
    pub async fn upload(&self, name: &str, data: &[u8]) -> Value {
        self.upload_with(name, data, Value::Null).await
    }

    /// The whole flow with extra check fields (claims); the file object.
    pub async fn upload_with(&self, name: &str, data: &[u8], more: Value) -> Value {
        let (status, body) = self.check_with(name, data, more).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let up = &body["upload"];
        self.send_chunks(up, data).await;
        let (status, body) = self.complete(up["id"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["file"].clone()
    }

    pub async fn files(&self) -> Vec<Value> {
        let (status, body) = self.send(self.req(Method::GET, "/api/v1/files")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["files"].as_array().unwrap().clone()
    }

    pub async fn prove(&self, id: &str, digests: &[String]) -> (StatusCode, Value) {
        self.send(
            self.req(Method::POST, &format!("/api/v1/uploads/{id}/proof"))
                .json(&json!({ "digests": digests })),
        )
        .await
    }

    /// Posts one file as a form over a plain connection, reading the answer
    /// while the body is still being sent, as curl does: an answer given
    /// before the whole body arrived (a refusal) is seen, not lost to the
    /// connection closing under an unfinished request.
    pub async fn post_form_raw(&self, name: &str, bytes: &[u8]) -> (StatusCode, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let boundary = "tusk-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let host = self.server.base.trim_start_matches("http://").to_owned();
        let head = format!(
            "POST /api/v1/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            body.len()
        );
        let conn = tokio::net::TcpStream::connect(&host).await.unwrap();
        let (mut rd, mut wr) = conn.into_split();
        let writer = tokio::spawn(async move {
            // The server may stop reading once it has answered.
            let _ = wr.write_all(head.as_bytes()).await;
            let _ = wr.write_all(&body).await;
        });
        let mut answer = Vec::new();
        // A reset after the answer (unread body bytes) ends the read.
        let _ = rd.read_to_end(&mut answer).await;
        writer.abort();
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").expect("an answer");
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        (
            StatusCode::from_u16(status).unwrap(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// Posts `files` (name, bytes) as one `multipart/form-data` form.
    pub async fn post_form(&self, files: Vec<(String, Vec<u8>)>) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        }
        self.send(self.req(Method::POST, "/api/v1/files").multipart(form))
            .await
    }
}

/// The answers to a challenge, computed from the bytes.
pub fn answers(challenge: &Value, data: &[u8]) -> Vec<String> {
    let nonce = hex_decode(challenge["nonce"].as_str().unwrap());
    challenge["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let i = b.as_u64().unwrap() as usize;
            let block = &data[i * 4 * MIB..((i + 1) * 4 * MIB).min(data.len())];
            let mut h = Sha256::new();
            h.update(&nonce);
            h.update(block);
            hex(&h.finalize())
        })
        .collect()
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
