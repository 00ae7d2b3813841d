//! Any method, path, query, headers and body on every route: never a 5xx,
//! every 4xx in the documented shape, nothing changed by what is refused.

use proptest::prelude::*;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use super::{Fixtures, Harness, Req, any_value, garbage_segment, unknown_id};

/// Every route of the server with the methods it answers, its variable
/// segments marked: `{u}` an upload, `{f}` a file, `{t}` a tus upload,
/// `{i}` a chunk index, `{s}` any segment.
const ROUTES: [(&str, &[&str]); 20] = [
    ("/api/v1/uploads", &["POST"]),
    ("/api/v1/uploads/{u}", &["GET", "DELETE"]),
    ("/api/v1/uploads/{u}/chunks/{i}", &["PUT"]),
    ("/api/v1/uploads/{u}/proof", &["POST"]),
    ("/api/v1/uploads/{u}/complete", &["POST"]),
    ("/api/v1/files", &["GET", "POST"]),
    ("/api/v1/files/{f}", &["GET", "PATCH", "DELETE"]),
    ("/api/v1/files/{f}/link", &["POST"]),
    ("/files/{f}", &["GET", "HEAD"]),
    ("/files/{f}/{s}", &["GET", "HEAD"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
    ("/", &["GET"]),
    ("/web/{s}", &["GET"]),
    ("/tus", &["POST", "OPTIONS"]),
    ("/tus/", &["POST", "OPTIONS"]),
    ("/tus/{t}", &["HEAD", "PATCH", "DELETE", "GET"]),
    ("/tus/{t}/{s}", &["PATCH"]),
    ("/{s}/{s}", &["GET"]),
];

/// Any method, or mostly one that `methods` answers.
fn method(methods: &'static [&'static str]) -> impl Strategy<Value = Method> {
    let any = prop::sample::select(vec![
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::from_bytes(b"PROPFIND").unwrap(),
        Method::from_bytes(b"X").unwrap(),
    ]);
    let answered =
        prop::sample::select(methods).prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap());
    prop_oneof![3 => answered, 1 => any]
}

/// A chunk index: good ones, edges, and text that is no index.
fn index() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..3u64).prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        Just(u32::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("+1".to_owned()),
        Just("1.0".to_owned()),
        Just("0x1".to_owned()),
        Just(" 1".to_owned()),
        garbage_segment(),
    ]
}

/// A request line: a route, a method, and a path whose segments name the
/// fixtures, unknown ids or garbage.
fn target(f: &Fixtures) -> impl Strategy<Value = (Method, String)> + use<> {
    let id = |known: Vec<String>| {
        prop_oneof![
            2 => prop::sample::select(known),
            1 => unknown_id(),
            2 => garbage_segment(),
        ]
    };
    let route = prop::sample::select(ROUTES.to_vec())
        .prop_flat_map(|(route, methods)| (Just(route), method(methods)));
    (
        route,
        id(vec![f.upload.clone(), f.tus.clone()]),
        id(vec![f.file.clone()]),
        id(vec![f.tus.clone(), f.upload.clone()]),
        index(),
        garbage_segment(),
        prop::option::of(query()),
    )
        .prop_map(|((route, method), u, fi, t, i, s, q)| {
            let mut p = route
                .replace("{u}", &u)
                .replace("{f}", &fi)
                .replace("{t}", &t)
                .replace("{i}", &i)
                .replace("{s}", &s);
            if let Some(q) = q {
                p = format!("{p}?{q}");
            }
            (method, p)
        })
}

/// Query strings: the parameters the server reads, repeated, empty, with
/// values of any kind.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("limit"),
        Just("cursor"),
        Just("q"),
        Just("inline"),
        Just("expires"),
        Just("sig"),
        Just("x"),
    ];
    let value = prop_oneof![
        Just(String::new()),
        (0..2000u32).prop_map(|n| n.to_string()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        "[0-9a-f]{64}",
        garbage_segment(),
    ];
    prop::collection::vec((key, value), 0..4).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// Headers the server reads, with values that mean something or nothing.
fn headers() -> impl Strategy<Value = Vec<(HeaderName, HeaderValue)>> {
    let known = prop::sample::select(vec![
        ("content-type", "application/json"),
        ("content-type", "application/offset+octet-stream"),
        ("content-type", "multipart/form-data; boundary=b"),
        ("content-type", "multipart/form-data"),
        ("tus-resumable", "1.0.0"),
        ("tus-resumable", "0.2.2"),
        ("upload-length", "10"),
        ("upload-length", "18446744073709551616"),
        ("upload-offset", "0"),
        ("upload-defer-length", "1"),
        ("upload-metadata", "filename YS50eHQ=,x"),
        ("upload-concat", "partial"),
        ("upload-concat", "final;/tus/x"),
        ("upload-checksum", "sha1 AAAA"),
        ("x-http-method-override", "PATCH"),
        ("x-http-method-override", "DELETE"),
        ("trailer", "Upload-Checksum"),
        ("range", "bytes=0-1"),
        ("range", "bytes=-0"),
        ("if-range", "\"x\""),
        ("if-none-match", "*"),
        ("content-digest", "sha-256=:AAAA:"),
        ("chunk-hash", "sha256-4m:00"),
        ("authorization", "Bearer nope"),
        ("origin", "http://example.org"),
        ("access-control-request-method", "DELETE"),
    ])
    .prop_map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)));
    let name = prop::sample::select(vec![
        "content-type",
        "tus-resumable",
        "upload-length",
        "upload-offset",
        "upload-defer-length",
        "upload-metadata",
        "upload-concat",
        "upload-checksum",
        "x-http-method-override",
        "trailer",
        "range",
        "if-range",
        "if-none-match",
        "content-digest",
        "chunk-hash",
        "authorization",
        "accept",
        "x-anything",
    ]);
    let random = (name, any_value()).prop_map(|(n, v)| (HeaderName::from_static(n), v));
    // Half the requests speak tus, as every tus request but OPTIONS must.
    let tus = (
        HeaderName::from_static("tus-resumable"),
        HeaderValue::from_static("1.0.0"),
    );
    (
        any::<bool>(),
        prop::collection::vec(prop_oneof![known, random], 0..8),
    )
        .prop_map(move |(speaks_tus, mut headers)| {
            if speaks_tus {
                headers.insert(0, tus.clone());
            }
            headers
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..2048),
        Just(br#"{"name":"a","size":1,"hash":"sha256-4m:00"}"#.to_vec()),
        Just(b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxy\r\n--b--\r\n".to_vec()),
    ]
}

#[test]
fn any_request_on_any_route() {
    let h = Harness::new();
    let strategy =
        (target(&h.fixtures), headers(), body()).prop_map(|((method, path), headers, body)| Req {
            method,
            path,
            headers,
            body,
        });
    h.run(400, strategy, |req| h.probe(&req).map(|_| ()));
}
