//! The tus door: every tus header with values good and bad on creation,
//! PATCH, HEAD and DELETE; and `Upload-Metadata` as clients encode it,
//! read back verbatim through `HEAD`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue, LOCATION};

use super::{Harness, MAX_FILE, Req, any_value, garbage_segment, unknown_id};

/// Metadata pairs as tus clients send them: keys without spaces or
/// commas, any bytes as values.
fn metadata() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        prop_oneof![
            Just("filename".to_owned()),
            Just("filetype".to_owned()),
            "[!-+\\--~]{1,12}",
        ],
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            "[a-z]{1,8}/[a-z.+-]{1,12}".prop_map(String::into_bytes),
        ],
        0..6,
    )
    .prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k} {}", STANDARD.encode(v))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..200u64).prop_map(|n| n.to_string()),
        Just((MAX_FILE + 1).to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("1.5".to_owned()),
        Just(" 7 ".to_owned()),
    ]
}

fn checksum() -> impl Strategy<Value = String> {
    let algorithm = prop::sample::select(vec!["md5", "sha1", "sha256", "sha512", "crc32", ""]);
    (
        algorithm,
        prop_oneof![
            prop::sample::select(vec![16usize, 20, 32, 64])
                .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
            prop::collection::vec(any::<u8>(), 0..70),
        ],
        any::<bool>(),
    )
        .prop_map(|(a, d, encode)| {
            let d = if encode {
                STANDARD.encode(&d)
            } else {
                String::from_utf8_lossy(&d).into_owned()
            };
            format!("{a} {d}")
        })
}

/// Values for each tus header: what clients send, and what they should not.
fn tus_headers(tus: String) -> impl Strategy<Value = Vec<(HeaderName, HeaderValue)>> {
    let value = |good: BoxedStrategy<String>| {
        prop_oneof![
            3 => good.prop_filter_map("a header value", |s| HeaderValue::from_str(&s).ok()),
            1 => any_value(),
        ]
    };
    let concat = prop_oneof![
        Just("partial".to_owned()),
        Just(format!("final;/tus/{tus}")),
        unknown_id().prop_map(|id| format!("final;/tus/{id} http://x/tus/{id}")),
        garbage_segment().prop_map(|s| format!("final;{s}")),
    ];
    let one = prop_oneof![
        (Just("upload-length"), value(number().boxed())),
        (Just("upload-offset"), value(number().boxed())),
        (
            Just("upload-defer-length"),
            value(prop::sample::select(vec!["1".to_owned(), "0".to_owned()]).boxed())
        ),
        (Just("upload-metadata"), value(metadata().boxed())),
        (Just("upload-concat"), value(concat.boxed())),
        (Just("upload-checksum"), value(checksum().boxed())),
        (
            Just("content-type"),
            value(Just("application/offset+octet-stream".to_owned()).boxed())
        ),
        (
            Just("tus-resumable"),
            value(Just("1.0.0".to_owned()).boxed())
        ),
        (
            Just("x-http-method-override"),
            value(
                prop::sample::select(vec!["PATCH", "DELETE", "HEAD", "GET", "POST"])
                    .prop_map(String::from)
                    .boxed()
            )
        ),
    ]
    .prop_map(|(n, v)| (HeaderName::from_static(n), v));
    prop::collection::vec(one, 0..7)
}

#[test]
fn tus_headers_of_any_value() {
    let h = Harness::new();
    let f = &h.fixtures;
    // `None` for a path: an upload made for the case (100 bytes, or of a
    // length to be declared).
    let target = prop_oneof![
        1 => Just((Method::POST, Some("/tus/".to_owned()))),
        3 => prop::sample::select(vec![
            Method::PATCH,
            Method::PATCH,
            Method::HEAD,
            Method::DELETE,
            Method::GET
        ])
        .prop_flat_map({
            let tus = f.tus.clone();
            move |m| {
                let id = prop_oneof![
                    1 => Just(Some(tus.clone())),
                    3 => Just(None),
                    1 => unknown_id().prop_map(Some),
                    1 => garbage_segment().prop_map(Some),
                ];
                (Just(m), id.prop_map(|id| id.map(|id| format!("/tus/{id}"))))
            }
        }),
    ];
    let strategy = (
        target,
        prop::bool::weighted(0.8),
        tus_headers(f.tus.clone()),
        prop::bool::weighted(0.6),
        (0..120u64, 0..120u64),
        prop::collection::vec(any::<u8>(), 0..150),
    );
    h.run(
        400,
        strategy,
        |((method, path), speaks_tus, headers, usual, (offset, length), body)| {
            let path = match path {
                Some(path) => path,
                None => {
                    let mut fresh =
                        Req::new(Method::POST, "/tus/").header("tus-resumable", "1.0.0");
                    fresh = if length % 4 == 0 {
                        fresh.header("upload-defer-length", "1")
                    } else {
                        fresh.header("upload-length", "100")
                    };
                    let made = h.probe(&fresh)?;
                    prop_assert_eq!(made.status.as_u16(), 201);
                    made.headers[LOCATION].to_str().unwrap().to_owned()
                }
            };
            let mut req = Req::new(method.clone(), path).body(body);
            if speaks_tus {
                req = req.header("tus-resumable", "1.0.0");
            }
            // The random headers come first: where a name repeats, the
            // server reads the first.
            req.headers.extend(headers);
            if usual && method == Method::PATCH {
                req = req
                    .header("content-type", "application/offset+octet-stream")
                    .header("upload-offset", offset.to_string());
            }
            if usual && method == Method::POST {
                req = req
                    .header("upload-length", length.to_string())
                    .header("content-type", "application/offset+octet-stream");
            }
            h.probe(&req).map(|_| ())
        },
    );
}

/// Whatever metadata a client encodes, `HEAD` gives it back as sent, with
/// the length.
#[test]
fn metadata_reads_back_through_head() {
    let h = Harness::new();
    h.run(100, (metadata(), 0..1000u64), |(meta, length)| {
        let create = Req::new(Method::POST, "/tus/")
            .header("tus-resumable", "1.0.0")
            .header("upload-length", length.to_string())
            .header("upload-metadata", &meta);
        let sent = h.probe(&create)?;
        if sent.status.is_client_error() {
            // Only a name that normalises to nothing, or a too long one.
            let code = sent.json()["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            prop_assert!(
                matches!(code.as_str(), "invalid_name" | "name_too_long"),
                "{} {}",
                sent.status,
                code
            );
            return Ok(());
        }
        prop_assert_eq!(sent.status.as_u16(), 201);
        let at = sent.headers[LOCATION].to_str().unwrap().to_owned();
        let head = h.probe(&Req::new(Method::HEAD, at.clone()).header("tus-resumable", "1.0.0"))?;
        prop_assert_eq!(head.status.as_u16(), 200);
        let got = |name: &str| {
            head.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        prop_assert_eq!(got("upload-length"), Some(length.to_string()));
        prop_assert_eq!(got("upload-metadata"), Some(meta));
        let gone = h.probe(&Req::new(Method::DELETE, at).header("tus-resumable", "1.0.0"))?;
        prop_assert_eq!(gone.status.as_u16(), 204);
        Ok(())
    });
}
