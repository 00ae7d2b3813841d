//! Speaking tus to a test server: requests with the protocol's headers,
//! and raw HTTP/1.1 for what reqwest cannot send (trailers, a body cut
//! off mid-way).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestServer;

pub const OCTETS: &str = "application/offset+octet-stream";

impl TestServer {
    /// A tus request: `Tus-Resumable: 1.0.0` included.
    pub fn tus(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("tus-resumable", "1.0.0")
    }

    /// `POST /tus/` with `Upload-Length: len`; returns the upload's path.
    pub async fn tus_create(&self, len: u64) -> String {
        let r = self
            .tus(Method::POST, "/tus/")
            .header("upload-length", len)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        location(&r)
    }

    pub async fn tus_head(&self, path: &str) -> Response {
        self.tus(Method::HEAD, path).send().await.unwrap()
    }

    /// The upload's offset, as HEAD reports it.
    pub async fn tus_offset(&self, path: &str) -> u64 {
        let r = self.tus_head(path).await;
        assert_eq!(r.status(), StatusCode::OK, "HEAD {path}");
        number(&r, "upload-offset")
    }

    /// `PATCH` of `bytes` at `offset`.
    pub async fn tus_patch(&self, path: &str, offset: u64, bytes: &[u8]) -> Response {
        self.tus(Method::PATCH, path)
            .header("content-type", OCTETS)
            .header("upload-offset", offset)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// The JSON API's view of the file a tus upload completed into.
    pub async fn tus_file(&self, path: &str) -> serde_json::Value {
        let id = path.rsplit('/').next().unwrap();
        let (status, upload) = self.get_json(&format!("/api/v1/uploads/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{upload}");
        let file_id = upload["upload"]["file_id"]
            .as_str()
            .unwrap_or_else(|| panic!("upload {id} has no file: {upload}"));
        let (status, file) = self.get_json(&format!("/api/v1/files/{file_id}")).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        file["file"].clone()
    }

    /// Opens a raw connection to the server.
    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.base.trim_start_matches("http://"))
            .await
            .unwrap()
    }
}

pub fn location(r: &Response) -> String {
    let loc = header(r, "location");
    assert!(loc.starts_with("/tus/"), "Location {loc}");
    loc
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn number(r: &Response, name: &str) -> u64 {
    header(r, name).parse().unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Writes a raw request head (lines joined with CRLF, blank line added).
pub async fn send_head(conn: &mut TcpStream, lines: &[String]) {
    let head = format!("{}\r\n\r\n", lines.join("\r\n"));
    conn.write_all(head.as_bytes()).await.unwrap();
}

/// Writes one chunk of a chunked body.
pub async fn send_chunk(conn: &mut TcpStream, data: &[u8]) {
    conn.write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await
        .unwrap();
    conn.write_all(data).await.unwrap();
    conn.write_all(b"\r\n").await.unwrap();
}

/// Ends a chunked body with these trailer lines.
pub async fn send_trailers(conn: &mut TcpStream, trailers: &[String]) {
    let mut end = String::from("0\r\n");
    for t in trailers {
        end.push_str(t);
        end.push_str("\r\n");
    }
    end.push_str("\r\n");
    conn.write_all(end.as_bytes()).await.unwrap();
}

/// Reads a response head; returns its status line and headers (lower-case
/// names).
pub async fn read_head(conn: &mut TcpStream) -> (u16, Vec<(String, String)>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).await.unwrap();
        assert!(n == 1, "the connection closed before a response");
        buf.push(byte[0]);
    }
    let text = String::from_utf8(buf).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// The head lines of a chunked PATCH, plus `extra`.
pub fn chunked_patch(base: &str, path: &str, offset: u64, extra: &[&str]) -> Vec<String> {
    let mut lines = vec![
        format!("PATCH {path} HTTP/1.1"),
        format!("Host: {}", base.trim_start_matches("http://")),
        "Tus-Resumable: 1.0.0".to_owned(),
        format!("Content-Type: {OCTETS}"),
        format!("Upload-Offset: {offset}"),
        "Transfer-Encoding: chunked".to_owned(),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines
}
