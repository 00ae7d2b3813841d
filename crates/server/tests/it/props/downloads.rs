//! Downloads under any `Range`, `If-Range` and `If-None-Match`: the whole
//! file, exactly the bytes a `Content-Range` names, 304, or 416 with the
//! file's size.

use proptest::prelude::*;
use reqwest::Method;
use reqwest::header::{CONTENT_RANGE, ETAG, LAST_MODIFIED};

use super::{Harness, Req, any_value};

#[derive(Clone, Debug)]
enum Spec {
    Span(u64, Option<u64>),
    Suffix(u64),
    Junk(String),
}

fn spec(size: u64) -> impl Strategy<Value = Spec> {
    let offset = prop_oneof![0..size + 10, any::<u64>(), Just(u64::MAX)];
    prop_oneof![
        3 => (offset.clone(), prop::option::of(offset.clone())).prop_map(|(a, b)| Spec::Span(a, b)),
        2 => offset.prop_map(Spec::Suffix),
        1 => "[0-9a-z =+-]{0,8}".prop_map(Spec::Junk),
    ]
}

fn render(unit: &str, specs: &[Spec]) -> String {
    let specs: Vec<String> = specs
        .iter()
        .map(|s| match s {
            Spec::Span(a, Some(b)) => format!("{a}-{b}"),
            Spec::Span(a, None) => format!("{a}-"),
            Spec::Suffix(n) => format!("-{n}"),
            Spec::Junk(j) => j.clone(),
        })
        .collect();
    format!("{unit}{}", specs.join(","))
}

/// The bytes `Range: bytes=<spec>` asks of a file of `size` bytes, if the
/// one spec can be served (RFC 9110 §14.1.2).
fn expected(spec: &Spec, size: u64) -> Option<std::ops::Range<u64>> {
    match *spec {
        Spec::Span(a, b) if a < size && b.is_none_or(|b| a <= b) => {
            Some(a..b.map_or(size, |b| b.min(size - 1) + 1))
        }
        Spec::Suffix(n) if n > 0 => Some(size - n.min(size)..size),
        _ => None,
    }
}

#[test]
fn ranges_serve_the_bytes_they_name() {
    let h = Harness::new();
    let file = h.fixtures.file_bytes.clone();
    let size = file.len() as u64;
    let path = format!("/files/{}", h.fixtures.file);
    let first = h.send(&Req::new(Method::GET, path.clone())).unwrap();
    let etag = first.headers[ETAG].to_str().unwrap().to_owned();
    let modified = first.headers[LAST_MODIFIED].to_str().unwrap().to_owned();

    let unit = prop_oneof![
        4 => Just("bytes="),
        1 => prop::sample::select(vec!["bytes = ", " bytes=", "Bytes=", "items=", ""]),
    ];
    let condition = |good: Vec<String>| {
        prop::option::weighted(
            0.3,
            prop_oneof![
                prop::sample::select(good).prop_map(|s| s.parse().unwrap()),
                any_value(),
            ],
        )
    };
    let strategy = (
        unit,
        prop_oneof![
            3 => prop::collection::vec(spec(size), 1..2),
            1 => prop::collection::vec(spec(size), 0..3),
        ],
        condition(vec![etag.clone(), modified.clone(), "\"other\"".into()]),
        condition(vec![
            etag.clone(),
            format!("W/{etag}"),
            "*".into(),
            "\"x\", *".into(),
        ]),
        prop_oneof![Just(Method::GET), Just(Method::HEAD)],
    );
    h.run(
        300,
        strategy,
        |(unit, specs, if_range, if_none_match, method)| {
            let range = render(unit, &specs);
            let mut req = Req::new(method.clone(), path.clone()).header("range", &range);
            if let Some(v) = &if_range {
                req.headers.push((reqwest::header::IF_RANGE, v.clone()));
            }
            if let Some(v) = &if_none_match {
                req.headers
                    .push((reqwest::header::IF_NONE_MATCH, v.clone()));
            }
            let sent = h.probe(&req)?;
            let body_of = |r: std::ops::Range<u64>| {
                if method == Method::HEAD {
                    Vec::new()
                } else {
                    file[r.start as usize..r.end as usize].to_vec()
                }
            };
            let served = match sent.status.as_u16() {
                200 => {
                    prop_assert_eq!(&sent.body[..], &body_of(0..size)[..]);
                    None
                }
                206 => {
                    let cr = sent.headers[CONTENT_RANGE].to_str().unwrap();
                    let (span, total) = cr.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
                    let (a, b) = span.split_once('-').unwrap();
                    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                    prop_assert_eq!(total, size.to_string());
                    prop_assert!(a <= b && b < size, "{}", cr);
                    prop_assert_eq!(&sent.body[..], &body_of(a..b + 1)[..]);
                    Some(a..b + 1)
                }
                304 => {
                    prop_assert!(if_none_match.is_some());
                    return Ok(());
                }
                416 => {
                    let cr = sent.headers[CONTENT_RANGE].to_str().unwrap();
                    prop_assert_eq!(cr, format!("bytes */{size}"));
                    None
                }
                other => return Err(TestCaseError::fail(format!("{other} for {req:?}"))),
            };
            // One well-formed byte range, no conditions: exactly the bytes
            // RFC 9110 names, or 416 when there are none.
            if let ([spec @ (Spec::Span(..) | Spec::Suffix(_))], "bytes=", None, None) =
                (&specs[..], unit, &if_range, &if_none_match)
            {
                prop_assert_eq!(served, expected(spec, size), "{}", range);
            }
            Ok(())
        },
    );
}
