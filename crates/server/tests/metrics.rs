//! `/metrics`: a real server is scraped, put through a JSON-API upload, an
//! instant upload, a tus upload and an expiry, and scraped again; every
//! counter must have moved by exactly what was done, the byte counters by
//! the body bytes that crossed the wire each way, and the chunk latency
//! histogram must hold one sample per chunk request.
//!
//! The recorder is one per process, so the test compares two scrapes
//! instead of reading absolute values, and this file holds a single test:
//! another test running beside it would move the same counters.

#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::{MIB, TestServer, hash, random_bytes};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tusk_core::model::Timestamp;

/// Body bytes that went each way through the test's requests.
#[derive(Default)]
struct Wire {
    to_server: u64,
    from_server: u64,
}

impl Wire {
    /// Sends `request` with `body`, reads the whole answer, tallies both.
    async fn send(&mut self, request: RequestBuilder, body: Vec<u8>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.send_raw(request, body).await;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    async fn send_raw(
        &mut self,
        request: RequestBuilder,
        body: Vec<u8>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        self.to_server += body.len() as u64;
        let r = request.body(body).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        let bytes = r.bytes().await.unwrap().to_vec();
        self.from_server += bytes.len() as u64;
        (status, headers, bytes)
    }

    /// `POST /api/v1/uploads`, the JSON body tallied as sent.
    async fn create(&mut self, s: &TestServer, body: Value) -> (StatusCode, Value) {
        let request = s
            .http
            .post(s.url("/api/v1/uploads"))
            .header(CONTENT_TYPE, "application/json");
        self.send(request, serde_json::to_vec(&body).unwrap()).await
    }

    /// `GET /metrics`: its text, parsed.
    async fn scrape(&mut self, s: &TestServer) -> Scrape {
        let (status, headers, bytes) = self.send_raw(s.http.get(s.url("/metrics")), vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        Scrape::parse(String::from_utf8(bytes).unwrap())
    }
}

/// One scrape: its text and its samples.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Reads the Prometheus text format: `name{label="value",…} number`.
    fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap();
                    let labels = inner
                        .split(',')
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Scrape { text, samples }
    }

    /// The sum of the samples of `name` carrying all of `labels` (0 when
    /// there are none yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

/// When an upload (as JSON) expires.
fn expiry(upload: &Value) -> Timestamp {
    let text = upload["expires_at"].as_str().unwrap();
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    Timestamp((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_was_done() {
    let s = TestServer::start().await;
    let mut wire = Wire::default();
    let before = wire.scrape(&s).await;
    // Bytes sent from here on include the first scrape's own body: it was
    // counted as it left, after it was rendered.
    let first_scrape_len = before.text.len() as u64;
    wire.from_server = 0;
    wire.to_server = 0;

    // A JSON-API upload: create, two chunks, complete.
    let data = random_bytes(9 * MIB + 1);
    let (status, body) = wire
        .create(
            &s,
            json!({ "name": "a.bin", "size": data.len(), "hash": hash(&data) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["upload"]["id"].as_str().unwrap().to_owned();
    let chunk_size = body["upload"]["chunk_size"].as_u64().unwrap() as usize;
    assert_eq!(data.chunks(chunk_size).count(), 2);
    for (i, chunk) in data.chunks(chunk_size).enumerate() {
        let put = s
            .http
            .put(s.url(&format!("/api/v1/uploads/{id}/chunks/{i}")));
        let (status, _, answer) = wire.send_raw(put, chunk.to_vec()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!answer.is_empty());
    }
    let complete = s
        .http
        .post(s.url(&format!("/api/v1/uploads/{id}/complete")));
    let (status, _, _) = wire.send_raw(complete, vec![]).await;
    assert_eq!(status, StatusCode::OK);

    // The same content again: an instant upload. Counted bodies keep their
    // length: the JSON answer still says how long it is.
    let again = json!({ "name": "again.bin", "size": data.len(), "hash": hash(&data) });
    let request = s
        .http
        .post(s.url("/api/v1/uploads"))
        .header(CONTENT_TYPE, "application/json");
    let (status, headers, answer) = wire
        .send_raw(request, serde_json::to_vec(&again).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["status"], "complete", "{answer}");
    assert!(headers.contains_key(CONTENT_LENGTH), "{headers:?}");

    // A tus upload in two PATCHes.
    let tus_data = random_bytes(3 * MIB);
    let create = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", tus_data.len());
    let (status, headers, _) = wire.send_raw(create, vec![]).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = headers[LOCATION].to_str().unwrap().to_owned();
    let (first, second) = tus_data.split_at(MIB);
    for (offset, piece) in [(0, first), (MIB, second)] {
        let patch = s
            .tus(Method::PATCH, &path)
            .header(CONTENT_TYPE, common::tus::OCTETS)
            .header("upload-offset", offset);
        let (status, _, _) = wire.send_raw(patch, piece.to_vec()).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    // It became a file.
    let upload_id = path.rsplit('/').next().unwrap();
    let (status, upload) = wire
        .send(
            s.http.get(s.url(&format!("/api/v1/uploads/{upload_id}"))),
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let file_id = upload["upload"]["file_id"].as_str().unwrap();
    let (status, file) = wire
        .send(
            s.http.get(s.url(&format!("/api/v1/files/{file_id}"))),
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["file"]["size"], tus_data.len());

    // An upload left alone until it expires.
    let idle = random_bytes(MIB);
    let (status, body) = wire
        .create(
            &s,
            json!({ "name": "idle.bin", "size": idle.len(), "hash": hash(&idle) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let due = expiry(&body["upload"]);
    assert_eq!(s.service.sweep_expired(due).await.unwrap(), 1);

    // The last scrape's body leaves after it is rendered: not in its text.
    let (to_server, from_server) = (wire.to_server, wire.from_server);
    let after = wire.scrape(&s).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(moved("tusk_uploads_created_total", &[]), 3.0);
    assert_eq!(moved("tusk_uploads_completed_total", &[]), 2.0);
    assert_eq!(moved("tusk_instant_uploads_total", &[]), 1.0);
    assert_eq!(moved("tusk_uploads_expired_total", &[]), 1.0);

    let requests = |method, status| {
        moved(
            "tusk_http_requests_total",
            &[("method", method), ("status", status)],
        )
    };
    // The JSON create, the tus create and the idle upload's create.
    assert_eq!(requests("POST", "201"), 3.0);
    // Completion and the instant upload.
    assert_eq!(requests("POST", "200"), 2.0);
    assert_eq!(requests("PUT", "200"), 2.0);
    assert_eq!(requests("PATCH", "204"), 2.0);
    // The first scrape and the two lookups of the tus upload's file.
    assert_eq!(requests("GET", "200"), 3.0);

    assert_eq!(moved("tusk_bytes_received_total", &[]) as u64, to_server);
    assert!(to_server > (data.len() + tus_data.len()) as u64);
    assert_eq!(
        moved("tusk_bytes_sent_total", &[]) as u64,
        first_scrape_len + from_server
    );

    for protocol in ["api", "tus"] {
        let labels = [("protocol", protocol)];
        assert_eq!(
            moved("tusk_chunk_seconds_count", &labels),
            2.0,
            "{protocol}"
        );
        assert!(moved("tusk_chunk_seconds_sum", &labels) > 0.0, "{protocol}");
        let all = [("protocol", protocol), ("le", "+Inf")];
        assert_eq!(
            after.value("tusk_chunk_seconds_bucket", &all),
            after.value("tusk_chunk_seconds_count", &labels)
        );
    }
    assert!(
        after.text.contains("# TYPE tusk_chunk_seconds histogram"),
        "{}",
        after.text
    );
    for counter in [
        "tusk_http_requests_total",
        "tusk_bytes_received_total",
        "tusk_bytes_sent_total",
        "tusk_uploads_created_total",
        "tusk_uploads_completed_total",
        "tusk_uploads_expired_total",
        "tusk_instant_uploads_total",
    ] {
        assert!(
            after.text.contains(&format!("# HELP {counter} ")),
            "{counter} is not described"
        );
        assert!(
            after.text.contains(&format!("# TYPE {counter} counter")),
            "{counter} is not a counter"
        );
    }
    // No series is named after an upload: paths never become labels.
    assert!(!after.text.contains(&id), "{}", after.text);
    assert!(!after.text.contains(upload_id), "{}", after.text);
}
