//! The tus request headers, parsed into typed values, and the values of
//! the response headers.
//!
//! Every parser refuses what the protocol does not allow (a sign, a space
//! or a fraction in a number; a duplicate metadata key; an unknown checksum
//! algorithm) with the header's name in the message.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tusk_core::checksum::{Algorithm, Checksum};
use tusk_core::model::{Concat, UploadId};

use super::error::TusError;

/// The protocol version this server speaks.
pub const VERSION: &str = "1.0.0";

/// The extensions this server implements, as `Tus-Extension` lists them.
pub const EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,termination,\
checksum,checksum-trailer,expiration,concatenation,concatenation-unfinished";

/// The media type of PATCH bodies.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// `Tus-Checksum-Algorithm`: every algorithm `Upload-Checksum` may name.
pub fn checksum_algorithms() -> String {
    Algorithm::ALL.map(Algorithm::name).join(",")
}

/// A header's value as text; `None` when absent.
fn text<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, TusError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::trim)
                .map_err(|_| TusError::header(name, "is not ASCII"))
        })
        .transpose()
}

/// A non-negative decimal integer header (`Upload-Offset`, `Upload-Length`).
pub fn number(headers: &HeaderMap, name: &'static str) -> Result<Option<u64>, TusError> {
    text(headers, name)?
        .map(|s| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TusError::header(name, "must be a non-negative integer"));
            }
            s.parse()
                .map_err(|_| TusError::header(name, "is too large"))
        })
        .transpose()
}

/// `Upload-Defer-Length`: present means deferred; its only value is `1`.
pub fn defer_length(headers: &HeaderMap) -> Result<bool, TusError> {
    match text(headers, "upload-defer-length")? {
        None => Ok(false),
        Some("1") => Ok(true),
        Some(_) => Err(TusError::header("Upload-Defer-Length", "must be 1")),
    }
}

/// `Upload-Metadata`: the value as sent, and its decoded pairs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub raw: Option<String>,
    pub pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    pub fn parse(headers: &HeaderMap) -> Result<Metadata, TusError> {
        let Some(raw) = text(headers, "upload-metadata")? else {
            return Ok(Metadata::default());
        };
        let bad = |why| TusError::header("Upload-Metadata", why);
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if !raw.is_empty() {
            for pair in raw.split(',') {
                let mut words = pair.trim().split(' ');
                let key = words.next().unwrap_or_default();
                let value = words.next().unwrap_or_default();
                if words.next().is_some() {
                    return Err(bad("a pair is a key, a space and a base64 value"));
                }
                if key.is_empty() {
                    return Err(bad("has an empty key"));
                }
                if pairs.iter().any(|(k, _)| k == key) {
                    return Err(bad("repeats a key"));
                }
                let value = STANDARD
                    .decode(value)
                    .map_err(|_| bad("has a value that is not base64"))?;
                pairs.push((key.to_owned(), value));
            }
        }
        Ok(Metadata {
            raw: Some(raw.to_owned()),
            pairs,
        })
    }

    /// The value of `key`, as text (invalid UTF-8 replaced).
    pub fn get(&self, key: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The file's name: `filename`, else `name` (a blank one counts as none).
    pub fn name(&self) -> Option<String> {
        ["filename", "name"]
            .into_iter()
            .filter_map(|k| self.get(k))
            .find(|n| !n.trim().is_empty())
    }

    /// The file's media type: `filetype`, else `type` (one that is not a
    /// media type counts as none).
    pub fn mime(&self) -> Option<String> {
        ["filetype", "type"]
            .into_iter()
            .filter_map(|k| self.get(k))
            .find(|m| m.trim().parse::<mime_guess::mime::Mime>().is_ok())
    }
}

/// `Upload-Concat`: `partial`, or `final;` and the URLs of the parts.
pub fn concat(headers: &HeaderMap) -> Result<Concat, TusError> {
    let Some(value) = text(headers, "upload-concat")? else {
        return Ok(Concat::None);
    };
    let bad = |why| TusError::header("Upload-Concat", why);
    if value == "partial" {
        return Ok(Concat::Partial);
    }
    let Some(urls) = value.strip_prefix("final;") else {
        return Err(bad(
            "must be `partial` or `final;` and a list of upload URLs",
        ));
    };
    let parts = urls
        .split(' ')
        .filter(|u| !u.is_empty())
        .map(|u| upload_id_of(u).ok_or_else(|| bad("names something that is not an upload URL")))
        .collect::<Result<Vec<_>, _>>()?;
    if parts.is_empty() {
        return Err(bad("a final upload lists at least one partial upload"));
    }
    Ok(Concat::Final(parts))
}

/// The upload id an upload URL ends with (absolute or relative).
fn upload_id_of(url: &str) -> Option<UploadId> {
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            &rest[rest.find('/')?..]
        }
        None => url,
    };
    let path = path.split(['?', '#']).next()?;
    UploadId::parse(path.trim_end_matches('/').rsplit('/').next()?)
}

/// The value of `Upload-Concat` in responses.
pub fn render_concat(concat: &Concat) -> Option<String> {
    match concat {
        Concat::None => None,
        Concat::Partial => Some("partial".to_owned()),
        Concat::Final(parts) => {
            let urls: Vec<String> = parts.iter().map(|p| format!("/tus/{p}")).collect();
            Some(format!("final;{}", urls.join(" ")))
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64 digest>`, from a header map (the
/// request's headers or its trailers).
pub fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, TusError> {
    let Some(value) = text(headers, "upload-checksum")? else {
        return Ok(None);
    };
    let (name, digest) = value.split_once(' ').ok_or_else(|| {
        TusError::header(
            "Upload-Checksum",
            "is an algorithm, a space and a base64 digest",
        )
    })?;
    let algorithm =
        Algorithm::from_name(name).ok_or_else(|| TusError::UnknownAlgorithm(name.to_owned()))?;
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| TusError::header("Upload-Checksum", "has a digest that is not base64"))?;
    Checksum::new(algorithm, digest)
        .map(Some)
        .ok_or_else(|| TusError::header("Upload-Checksum", "has a digest of the wrong length"))
}

/// Whether the client announced `Upload-Checksum` as a trailer.
pub fn checksum_trailer_announced(headers: &HeaderMap) -> bool {
    headers.get_all("trailer").iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("upload-checksum"))
        })
    })
}

/// Whether the body is `application/offset+octet-stream`.
pub fn is_offset_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn numbers() {
        let n = |v| number(&with("upload-offset", v), "upload-offset");
        assert_eq!(n("0").unwrap(), Some(0));
        assert_eq!(n("18446744073709551615").unwrap(), Some(u64::MAX));
        for bad in [
            "-1",
            "+1",
            "1.5",
            "1e3",
            "",
            "abc",
            "18446744073709551616",
            "0x10",
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
        assert_eq!(number(&HeaderMap::new(), "upload-offset").unwrap(), None);
    }

    #[test]
    fn metadata() {
        let m = Metadata::parse(&with(
            "upload-metadata",
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential, filetype aW1hZ2UvcG5n",
        ))
        .unwrap();
        assert_eq!(m.name().as_deref(), Some("world_domination_plan.pdf"));
        assert_eq!(m.mime().as_deref(), Some("image/png"));
        assert_eq!(m.get("is_confidential").as_deref(), Some(""));
        let fallback = Metadata::parse(&with(
            "upload-metadata",
            "filename ,name YS50eHQ=,filetype bm9wZQ==,type dGV4dC9wbGFpbg==",
        ))
        .unwrap();
        assert_eq!(fallback.name().as_deref(), Some("a.txt"));
        assert_eq!(fallback.mime().as_deref(), Some("text/plain"));
        for bad in ["a YQ==,a Yg==", "a !!!", "a YQ== extra", "a YQ==,,b Yg=="] {
            assert!(
                Metadata::parse(&with("upload-metadata", bad)).is_err(),
                "{bad}"
            );
        }
        let empty = Metadata::parse(&with("upload-metadata", "")).unwrap();
        assert_eq!(empty.raw.as_deref(), Some(""));
        assert!(empty.pairs.is_empty());
    }

    #[test]
    fn concat_values() {
        let a = UploadId::random();
        let b = UploadId::random();
        assert_eq!(concat(&HeaderMap::new()).unwrap(), Concat::None);
        assert_eq!(
            concat(&with("upload-concat", "partial")).unwrap(),
            Concat::Partial
        );
        let v = format!("final;/tus/{a} http://h:1/x/tus/{b}");
        assert_eq!(
            concat(&with("upload-concat", &v)).unwrap(),
            Concat::Final(vec![a.clone(), b])
        );
        for bad in ["final;", "final;/tus/nope", "whole", "final /tus/x"] {
            assert!(concat(&with("upload-concat", bad)).is_err(), "{bad}");
        }
        assert_eq!(
            render_concat(&Concat::Final(vec![a.clone()])).unwrap(),
            format!("final;/tus/{a}")
        );
    }

    #[test]
    fn checksums() {
        let c = checksum(&with(
            "upload-checksum",
            "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha1);
        assert!(matches!(
            checksum(&with("upload-checksum", "crc32 AAAA")),
            Err(TusError::UnknownAlgorithm(_))
        ));
        for bad in ["sha1", "sha1 !!!", "md5 Kq5sNclPz7QV2+lfQIuc6R7oRu0="] {
            assert!(
                matches!(
                    checksum(&with("upload-checksum", bad)),
                    Err(TusError::Header { .. })
                ),
                "{bad}"
            );
        }
        assert!(checksum_trailer_announced(&with(
            "trailer",
            "Expires, Upload-Checksum"
        )));
        assert!(!checksum_trailer_announced(&with("trailer", "Expires")));
    }
    mod props {
        use axum::http::HeaderValue;
        use proptest::prelude::*;

        use super::super::*;

        /// Any bytes a header value can hold (visible ASCII, tabs, spaces
        /// and bytes past ASCII), biased towards the words tus headers use.
        fn value() -> impl Strategy<Value = HeaderValue> {
            let word = prop_oneof![
                Just(b" ".to_vec()),
                Just(b",".to_vec()),
                Just(b";".to_vec()),
                Just(b"=".to_vec()),
                Just(b"/tus/".to_vec()),
                Just(b"final;".to_vec()),
                Just(b"partial".to_vec()),
                Just(b"sha1 ".to_vec()),
                Just(b"://".to_vec()),
                Just(UploadId::random().to_string().into_bytes()),
                "[A-Za-z0-9+/=]{0,12}".prop_map(String::into_bytes),
                prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..8),
            ];
            prop::collection::vec(word, 0..16)
                .prop_map(|w| HeaderValue::from_bytes(&w.concat()).expect("no control bytes"))
        }

        fn with(name: &'static str, value: HeaderValue) -> HeaderMap {
            let mut h = HeaderMap::new();
            h.insert(name, value);
            h
        }

        /// A metadata key: ASCII without spaces and commas.
        fn key() -> impl Strategy<Value = String> {
            "[!-+\\--~]{1,12}"
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// No header value panics a parser.
            #[test]
            fn any_value_is_parsed_or_refused(v in value()) {
                let number = headers_number(&v);
                if let Ok(Some(n)) = number {
                    let text = v.to_str().unwrap().trim();
                    prop_assert_eq!(text.trim_start_matches('0').parse::<u64>().unwrap_or(0), n);
                }
                let _ = defer_length(&with("upload-defer-length", v.clone()));
                if let Ok(m) = Metadata::parse(&with("upload-metadata", v.clone())) {
                    let _ = (m.name(), m.mime());
                }
                if let Ok(Concat::Final(parts)) = concat(&with("upload-concat", v.clone())) {
                    prop_assert!(!parts.is_empty());
                }
                let _ = checksum(&with("upload-checksum", v.clone()));
                let _ = checksum_trailer_announced(&with("trailer", v.clone()));
                let _ = is_offset_octet_stream(&with("content-type", v));
            }

            /// Every number, written in decimal, reads back.
            #[test]
            fn numbers_round_trip(n in any::<u64>(), zeros in 0..3usize) {
                let text = format!("{}{n}", "0".repeat(zeros));
                prop_assert_eq!(headers_number(&HeaderValue::from_str(&text).unwrap()), Ok(Some(n)));
            }

            /// Metadata encoded as tus clients do reads back as sent.
            #[test]
            fn metadata_round_trips(
                pairs in prop::collection::btree_map(key(), prop::collection::vec(any::<u8>(), 0..40), 0..8),
                spaced in any::<bool>(),
            ) {
                let raw = pairs
                    .iter()
                    .map(|(k, v)| {
                        if v.is_empty() { k.clone() } else { format!("{k} {}", STANDARD.encode(v)) }
                    })
                    .collect::<Vec<_>>()
                    .join(if spaced { ", " } else { "," });
                let m = Metadata::parse(&with("upload-metadata", HeaderValue::from_str(&raw).unwrap()))
                    .map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
                prop_assert_eq!(m.raw.as_deref(), Some(raw.as_str()));
                let got: Vec<(String, Vec<u8>)> = pairs.into_iter().collect();
                prop_assert_eq!(m.pairs, got);
            }

            /// `Upload-Concat` as this server renders it reads back.
            #[test]
            fn concat_round_trips(n in 0..5usize, absolute in any::<bool>()) {
                let ids: Vec<UploadId> = (0..n).map(|_| UploadId::random()).collect();
                let c = if n == 0 { Concat::Partial } else { Concat::Final(ids) };
                let mut text = render_concat(&c).unwrap();
                if absolute {
                    text = text.replace("/tus/", "https://example.org:8080/tus/");
                }
                let h = with("upload-concat", HeaderValue::from_str(&text).unwrap());
                prop_assert_eq!(concat(&h).unwrap(), c);
            }

            /// `Upload-Checksum` of every algorithm reads back.
            #[test]
            fn checksums_round_trip(
                algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
                digest in any::<[u8; 64]>(),
            ) {
                let digest = digest[..algorithm.digest_len()].to_vec();
                let text = format!("{} {}", algorithm.name(), STANDARD.encode(&digest));
                let h = with("upload-checksum", HeaderValue::from_str(&text).unwrap());
                prop_assert_eq!(checksum(&h).unwrap(), Checksum::new(algorithm, digest));
            }
        }

        fn headers_number(v: &HeaderValue) -> Result<Option<u64>, String> {
            number(&with("upload-offset", v.clone()), "upload-offset").map_err(|e| e.to_string())
        }
    }
}
