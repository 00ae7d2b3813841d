//! Multipart bodies: forms as browsers send them, stored file by file under
//! their normalised names; and forms with random part headers, random
//! boundaries and bodies cut or changed anywhere, refused cleanly, on the
//! form post and on chunk `PUT`s.

use proptest::prelude::*;
use reqwest::Method;
use reqwest::header::HeaderMap;
use tusk_core::name::{NameError, normalize};
use tusk_server::http::form::boundary;

use super::{Harness, Req, any_value};
use crate::common;

#[derive(Clone)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// A long body is shown by its length and first bytes.
impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.body[..self.body.len().min(40)];
        f.debug_struct("Part")
            .field("name", &self.name)
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field(
                "body",
                &format_args!("{} bytes: b\"{}\"", self.body.len(), shown.escape_ascii()),
            )
            .finish()
    }
}

impl Part {
    /// Whether the server takes it for a file, and under what name.
    fn file_name(&self) -> Option<String> {
        match &self.filename {
            Some(f) if f.is_empty() => None,
            Some(f) => Some(f.replace("%22", "\"")),
            None => (self.name == "file").then(|| self.name.clone()),
        }
    }
}

/// File names browsers send: anything but quotes, backslashes and control
/// characters (which they escape), with `%22` for a quote.
fn filename() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\"\\\\\\p{Cc}]{0,30}",
        "[a-z./ ]{0,12}",
        Just("a%22b.txt".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("..".to_owned()),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    (
        prop_oneof![Just("file".to_owned()), "[a-z]{1,8}"],
        prop::option::weighted(0.8, filename()),
        prop::option::of(prop::sample::select(vec![
            "text/plain",
            "application/octet-stream",
            "image/png",
            "application/json; charset=utf-8",
        ])),
        prop_oneof![
            20 => prop::collection::vec(any::<u8>(), 0..300),
            // Past the size held in memory: stored on its own, at once.
            1 => any::<u8>().prop_map(|b| vec![b; (1 << 20) + 1]),
        ],
    )
        .prop_map(|(name, filename, content_type, body)| Part {
            name,
            filename,
            content_type,
            body,
        })
}

/// Boundaries as clients pick them: long enough not to occur in the parts.
fn safe_boundary() -> impl Strategy<Value = String> {
    "[A-Za-z0-9'()+_,./:=?-]{12,40}"
}

fn encode(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = &p.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        out.extend_from_slice(disposition.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(t) = p.content_type {
            out.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&p.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn content_type(boundary: &str) -> String {
    format!("multipart/form-data; boundary=\"{boundary}\"")
}

/// A well-formed form stores each file part under its normalised name, in
/// order, with its bytes; or, if a name is refused, stores nothing.
#[test]
fn forms_store_their_files() {
    let h = Harness::new();
    let strategy = (safe_boundary(), prop::collection::vec(part(), 0..5));
    h.run(200, strategy, |(b, parts)| {
        let req = Req::new(Method::POST, "/api/v1/files")
            .header("content-type", content_type(&b))
            .body(encode(&b, &parts));
        let sent = h.probe(&req)?;
        let files: Vec<(Result<String, NameError>, &Part)> = parts
            .iter()
            .filter_map(|p| p.file_name().map(|n| (normalize(&n), p)))
            .collect();
        let code = sent.json()["error"]["code"].as_str().map(str::to_owned);
        // Parts are read in order: a field that is not a file and passes
        // the field bound is refused where it stands, unless a refused
        // name comes first.
        for p in &parts {
            match p.file_name() {
                None if p.body.len() > tusk_server::http::multipart::FIELD_LIMIT => {
                    prop_assert_eq!(code.as_deref(), Some("request_too_large"));
                    return Ok(());
                }
                Some(n) if normalize(&n).is_err() => break,
                _ => {}
            }
        }
        if files.is_empty() {
            prop_assert_eq!(code.as_deref(), Some("no_files"));
            return Ok(());
        }
        if let Some((Err(e), _)) = files.iter().find(|(n, _)| n.is_err()) {
            let want = match e {
                NameError::Empty => "invalid_name",
                NameError::TooLong => "name_too_long",
            };
            prop_assert_eq!(code.as_deref(), Some(want));
            return Ok(());
        }
        prop_assert_eq!(sent.status.as_u16(), 201, "{:?}", code);
        let stored = sent.json()["files"].as_array().cloned().unwrap_or_default();
        prop_assert_eq!(stored.len(), files.len());
        for (file, (name, part)) in stored.iter().zip(&files) {
            prop_assert_eq!(file["name"].as_str(), name.as_deref().ok());
            prop_assert_eq!(file["size"].as_u64(), Some(part.body.len() as u64));
            let hash = common::hash(&part.body);
            prop_assert_eq!(file["hash"].as_str(), Some(hash.as_str()));
        }
        Ok(())
    });
}

#[derive(Clone, Debug)]
enum Damage {
    /// The body ends early.
    Cut(prop::sample::Index),
    /// Bytes appear somewhere.
    Insert(prop::sample::Index, Vec<u8>),
    /// A header line joins a part's headers.
    HeaderLine(prop::sample::Index, Vec<u8>),
    /// `Content-Type` names another boundary, or none.
    ContentType(String),
}

fn damage() -> impl Strategy<Value = Damage> {
    let header_line = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        Just(b"no colon at all".to_vec()),
        Just(format!("X-Long: {}", "y".repeat(20_000)).into_bytes()),
        Just(b"X: y\r\n".repeat(40)),
        Just(b"Content-Disposition: form-data; filename=\"\xff\xfe\"".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"a;filename=x\"".to_vec()),
        Just(b"Content-Type: not a type".to_vec()),
    ];
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..20)
        )
            .prop_map(|(i, b)| Damage::Insert(i, b)),
        (any::<prop::sample::Index>(), header_line).prop_map(|(i, l)| Damage::HeaderLine(i, l)),
        prop_oneof![
            Just("multipart/form-data".to_owned()),
            Just("multipart/form-data; boundary=".to_owned()),
            Just("multipart/form-data; boundary=\"\"".to_owned()),
            Just("Multipart/Form-Data; BOUNDARY=x; boundary=y".to_owned()),
            "[ -~]{0,60}".prop_map(|s| format!("multipart/form-data; boundary={s}")),
            "[ -~]{0,60}".prop_map(|s| format!("multipart/form-data;{s}")),
        ]
        .prop_map(Damage::ContentType),
    ]
}

/// Applies `damage` to a form's body and content type.
fn damaged(boundary: &str, mut body: Vec<u8>, damage: &[Damage]) -> (String, Vec<u8>) {
    let mut ct = content_type(boundary);
    for d in damage {
        match d {
            Damage::Cut(at) => body.truncate(at.index(body.len() + 1)),
            Damage::Insert(at, bytes) => {
                let at = at.index(body.len() + 1);
                body.splice(at..at, bytes.iter().copied());
            }
            Damage::HeaderLine(which, line) => {
                let marker = b"Content-Disposition";
                let starts: Vec<usize> = body
                    .windows(marker.len())
                    .enumerate()
                    .filter(|(_, w)| w == marker)
                    .map(|(i, _)| i)
                    .collect();
                if !starts.is_empty() {
                    let at = starts[which.index(starts.len())];
                    let mut l = line.clone();
                    l.extend_from_slice(b"\r\n");
                    body.splice(at..at, l);
                }
            }
            Damage::ContentType(c) => ct = c.clone(),
        }
    }
    (ct, body)
}

/// Broken forms, on both doors that read forms: no 5xx, the documented
/// errors, nothing kept of a refused post.
#[test]
fn broken_forms_are_refused_cleanly() {
    let h = Harness::new();
    let chunk = format!("/api/v1/uploads/{}/chunks/0", h.fixtures.upload);
    let boundary = prop_oneof![
        3 => safe_boundary(),
        1 => "[ -~]{1,8}",
        1 => "[^\\r\\n]{1,80}",
    ];
    let strategy = (
        prop::sample::select(vec!["/api/v1/files".to_owned(), chunk]),
        boundary,
        prop::collection::vec(part(), 0..4),
        prop::collection::vec(damage(), 1..3),
    );
    h.run(300, strategy, |(path, b, parts, damage)| {
        let (ct, body) = damaged(&b, encode(&b, &parts), &damage);
        let Ok(ct) = reqwest::header::HeaderValue::from_str(&ct) else {
            return Err(TestCaseError::reject("not a header value"));
        };
        let method = if path.contains("/chunks/") {
            Method::PUT
        } else {
            Method::POST
        };
        let mut req = Req::new(method, path).body(body);
        req.headers.push((reqwest::header::CONTENT_TYPE, ct));
        h.probe(&req).map(|_| ())
    });
}

/// `Content-Type` of any value: a boundary, no form, or 415; never a panic.
#[test]
fn any_content_type_gives_a_boundary_or_none() {
    let values = prop_oneof![
        any_value(),
        "[ -~]{0,40}".prop_map(|s| {
            reqwest::header::HeaderValue::from_str(&format!("multipart/form-data; {s}")).unwrap()
        }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(super::config(1000));
    runner
        .run(&values, |v| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::CONTENT_TYPE, v.clone());
            let multipart = v.to_str().is_ok_and(|s| {
                s.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
            match boundary(&headers) {
                Ok(Some(b)) => prop_assert!(multipart && !b.is_empty()),
                Ok(None) => prop_assert!(!multipart),
                Err(e) => {
                    prop_assert!(multipart);
                    prop_assert_eq!(e.code(), "unsupported_media_type");
                }
            }
            Ok(())
        })
        .unwrap();
    // The boundary is read as sent, quoted or not.
    runner
        .run(&safe_boundary(), |b| {
            for ct in [
                content_type(&b),
                format!("multipart/form-data; boundary={b}"),
            ] {
                let mut headers = HeaderMap::new();
                headers.insert(reqwest::header::CONTENT_TYPE, ct.parse().unwrap());
                if let Ok(Some(got)) = boundary(&headers) {
                    prop_assert_eq!(got, b.clone());
                }
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                content_type(&b).parse().unwrap(),
            );
            prop_assert_eq!(boundary(&headers).ok().flatten(), Some(b));
            Ok(())
        })
        .unwrap();
}
