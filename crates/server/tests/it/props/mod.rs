//! Properties of the server as clients reach it: random and mutated
//! requests on every route, sent over real HTTP to one server per property.
//!
//! Whatever arrives, the answer is never a 5xx; every 4xx carries
//! `{"error":{"code":…,"message":…}}` with a code that docs/api.md or
//! docs/tus.md lists for that status; and a refused request changes nothing
//! the server holds (the catalog's rows of uploads, chunks, blobs and
//! files, and the files on disk). Each property states its own number of
//! cases and keeps no failure files: a failure prints the smallest request
//! found.
//!
//! - [`routes`]: any method, path, headers and body on every route
//! - [`json`]: random and mutated JSON bodies of every endpoint that reads one
//! - [`tus`]: the tus headers, `Upload-Metadata` read back through `HEAD`
//! - [`form`]: multipart bodies: random parts, boundaries, bodies cut anywhere
//! - [`downloads`]: `Range` and the conditional headers of downloads
//! - [`regressions`]: what the properties found, as plain tests

mod downloads;
mod form;
mod json;
mod regressions;
mod routes;
mod tus;

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Debug;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestCaseResult, TestRunner};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::common::{self, MIB, TestServer, random_bytes};

/// A request as a property builds it.
#[derive(Clone)]
pub struct Req {
    pub method: Method,
    /// Path and query, as sent (percent-encoding included).
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Req {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_bytes(value.as_ref()).expect("a header value"),
        ));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Long bodies are shown by their length and first bytes.
impl Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.body[..self.body.len().min(120)];
        f.debug_struct("Req")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field(
                "body",
                &format_args!("{} bytes: b\"{}\"", self.body.len(), shown.escape_ascii()),
            )
            .finish()
    }
}

/// An answer.
#[derive(Debug)]
pub struct Sent {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Sent {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the server holds, as far as a refused request could change it.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Uploads, their chunks, ended uploads, blobs and files.
    catalog: String,
    blobs: usize,
    parts: usize,
}

/// Records made before the first case, for requests to name.
pub struct Fixtures {
    /// A finished file and its bytes.
    pub file: String,
    pub file_bytes: Vec<u8>,
    /// An unfinished upload of the JSON API (one chunk of 100 bytes).
    pub upload: String,
    /// An unfinished tus upload of 100 bytes.
    pub tus: String,
}

/// One server shared by all cases of a property, and how to check answers.
pub struct Harness {
    pub server: TestServer,
    /// A connection per request: a server may close one after refusing a
    /// body it did not read, and a pooled connection would then fail the
    /// next request, which is no fault of the server.
    http: reqwest::Client,
    pub fixtures: Fixtures,
    catalog: SqlitePool,
    documented: HashSet<(u16, String)>,
    /// The state before the next request, when known.
    state: RefCell<Option<Snapshot>>,
    /// Last: the server's task runs on it until the server is dropped.
    rt: tokio::runtime::Runtime,
}

/// The most bytes a file may have on these servers: sizes past it are
/// refused before anything is stored.
pub const MAX_FILE: u64 = 64 * MIB as u64;

impl Harness {
    pub fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (server, fixtures, catalog) = rt.block_on(async {
            // Durability is not what these properties look at: without
            // syncs, cases cost little and do not wait on the disk.
            let server = TestServer::start_with(|c| {
                c.max_file_size = MAX_FILE;
                c.no_fsync = true;
            })
            .await;
            let file_bytes = random_bytes(5000);
            let file = server.upload("fixture.bin", &file_bytes).await;
            let upload = server.start_upload("pending.bin", &random_bytes(100)).await;
            let tus = server
                .http
                .post(server.url("/tus/"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "100")
                .send()
                .await
                .unwrap();
            assert_eq!(tus.status(), StatusCode::CREATED);
            let tus = tus.headers()[LOCATION].to_str().unwrap();
            let fixtures = Fixtures {
                file: file["id"].as_str().unwrap().to_owned(),
                file_bytes,
                upload: upload["id"].as_str().unwrap().to_owned(),
                tus: tus.rsplit('/').next().unwrap().to_owned(),
            };
            let catalog = SqlitePool::connect_with(
                SqliteConnectOptions::new()
                    .filename(server.data().join("catalog.db"))
                    .read_only(true),
            )
            .await
            .expect("the catalog, read-only");
            (server, fixtures, catalog)
        });
        Harness {
            server,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("a client"),
            fixtures,
            catalog,
            documented: documented_codes(),
            state: RefCell::new(None),
            rt,
        }
    }

    /// Runs `test` on `cases` values of `strategy`; a failure panics with
    /// the smallest value found.
    pub fn run<S: Strategy>(
        &self,
        cases: u32,
        strategy: S,
        test: impl Fn(S::Value) -> TestCaseResult,
    ) where
        S::Value: Debug,
    {
        let mut runner = TestRunner::new(config(cases));
        if let Err(e) = runner.run(&strategy, test) {
            panic!("{e}");
        }
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Sends `req`. A request the URL parser refuses is not a case.
    pub fn send(&self, req: &Req) -> Result<Sent, TestCaseError> {
        let url = reqwest::Url::parse(&self.server.url(&req.path))
            .map_err(|_| TestCaseError::reject("not a URL"))?;
        let mut r = self.http.request(req.method.clone(), url);
        for (name, value) in &req.headers {
            r = r.header(name, value);
        }
        let r = r.body(req.body.clone());
        self.block_on(async {
            let response = r
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e:?}")))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| TestCaseError::fail(format!("the answer broke off: {e:?}")))?;
            Ok(Sent {
                status,
                headers,
                body,
            })
        })
    }

    /// Sends `req` and checks the answer: no 5xx; a 4xx in the documented
    /// shape that leaves everything as it was. A 4xx that carries
    /// `Location` is a tus creation whose body failed: the upload was made
    /// and the client is told where, so it may resume.
    pub fn probe(&self, req: &Req) -> Result<Sent, TestCaseError> {
        let before = match self.state.borrow_mut().take() {
            Some(s) => s,
            None => self.snapshot(),
        };
        let sent = self.send(req)?;
        self.check(req, &sent)?;
        if sent.status.is_client_error() && !sent.headers.contains_key(LOCATION) {
            let after = self.snapshot();
            prop_assert!(
                before == after,
                "{} for {:?} changed what the server holds: {}",
                sent.status,
                req,
                changes(&before, &after)
            );
            *self.state.borrow_mut() = Some(after);
        }
        Ok(sent)
    }

    /// The shape of an answer, whatever the request.
    pub fn check(&self, req: &Req, sent: &Sent) -> TestCaseResult {
        let text = String::from_utf8_lossy(&sent.body);
        prop_assert!(
            !sent.status.is_server_error(),
            "{} for {:?}: {}",
            sent.status,
            req,
            text
        );
        if !sent.status.is_client_error() {
            return Ok(());
        }
        let json = sent
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        prop_assert!(
            json,
            "{} without a JSON body for {:?}: {}",
            sent.status,
            req,
            text
        );
        if req.method == Method::HEAD {
            return Ok(());
        }
        let body = sent.json();
        let code = body["error"]["code"].as_str().unwrap_or_default();
        prop_assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{} for {:?}: {}",
            sent.status,
            req,
            text
        );
        prop_assert!(
            self.documented
                .contains(&(sent.status.as_u16(), code.to_owned())),
            "{} {:?} is not documented; for {:?}: {}",
            sent.status,
            code,
            req,
            text
        );
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        self.block_on(async {
            let catalog: String = sqlx::query(SNAPSHOT_SQL)
                .fetch_one(&self.catalog)
                .await
                .expect("the catalog reads")
                .get(0);
            Snapshot {
                catalog,
                blobs: self.server.blob_count(),
                parts: self.server.part_count(),
            }
        })
    }
}

/// What differs between two snapshots: catalog rows gone and come, and the
/// counts.
fn changes(before: &Snapshot, after: &Snapshot) -> String {
    let rows = |s: &Snapshot| -> HashSet<String> {
        s.catalog
            .split(['\n', '|', ','])
            .map(str::to_owned)
            .collect()
    };
    let (b, a) = (rows(before), rows(after));
    format!(
        "rows gone {:?}, rows come {:?}, blobs {} -> {}, parts {} -> {}",
        b.difference(&a).collect::<Vec<_>>(),
        a.difference(&b).collect::<Vec<_>>(),
        before.blobs,
        after.blobs,
        before.parts,
        after.parts
    )
}

/// Every row a request could change, as one text.
const SNAPSHOT_SQL: &str = r#"
SELECT
  (SELECT ifnull(group_concat(r, char(10)), '') FROM (
     SELECT quote(id)||quote(name)||quote(mime)||quote(size)||quote(hash)||quote(md5)
            ||quote(sha256)||quote(chunk_size)||quote("offset")||quote(tail)
            ||quote(file_id)||quote(expires_at)||quote(meta)||quote(concat) AS r
     FROM uploads ORDER BY id))
  || '|' || (SELECT ifnull(group_concat(r, ','), '') FROM (
     SELECT upload_id||':'||idx AS r FROM upload_chunks ORDER BY upload_id, idx))
  || '|' || (SELECT ifnull(group_concat(r, ','), '') FROM (
     SELECT id||':'||reason AS r FROM ended_uploads ORDER BY id))
  || '|' || (SELECT ifnull(group_concat(r, ','), '') FROM (
     SELECT id||':'||refs||':'||quote(md5)||quote(sha256) AS r FROM blobs ORDER BY id))
  || '|' || (SELECT ifnull(group_concat(r, ','), '') FROM (
     SELECT id||':'||name||':'||public AS r FROM files ORDER BY id))
"#;

/// Few cases, no failure files, a bounded search for the smallest failure.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        max_global_rejects: cases * 4,
        ..Config::default()
    }
}

/// The (status, code) pairs of the error tables in docs/api.md and
/// docs/tus.md.
fn documented_codes() -> HashSet<(u16, String)> {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut codes = HashSet::new();
    for page in ["api.md", "tus.md"] {
        let text = std::fs::read_to_string(docs.join(page)).expect("the docs");
        for line in text.lines() {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(status) = cols.get(1).and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            for code in cols[2].split('`').skip(1).step_by(2) {
                codes.insert((status, code.to_owned()));
            }
        }
    }
    assert!(codes.len() > 40, "the error tables were not found");
    codes
}

/// Header values of any bytes HTTP allows (no control bytes but tab).
pub fn any_value() -> impl Strategy<Value = HeaderValue> {
    prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..40)
        .prop_map(|v| HeaderValue::from_bytes(&v).expect("no control bytes"))
}

/// Path segments that parse as nothing this server knows: empty, dot
/// segments, percent-encoded bytes of any kind (not UTF-8, NUL, `/`),
/// almost-ids, very long ones.
pub fn garbage_segment() -> impl Strategy<Value = String> {
    let encode = |b: &[u8]| b.iter().map(|b| format!("%{b:02X}")).collect::<String>();
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%".to_owned()),
        Just("%FF".to_owned()),
        Just("%00".to_owned()),
        Just("%2F".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%C3%28".to_owned()),
        Just("x".repeat(3000)),
        "[a-zA-Z0-9._~-]{1,40}",
        "[0-9a-fA-F]{31,33}",
        any::<String>().prop_map(move |s| encode(s.as_bytes())),
        prop::collection::vec(any::<u8>(), 1..20).prop_map(move |b| encode(&b)),
    ]
}

/// A fresh id of the right shape that names nothing.
pub fn unknown_id() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(|b| common::hex(&b))
}
