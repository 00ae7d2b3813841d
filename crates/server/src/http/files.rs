//! Files: the listing API (`/api/v1/files`) and downloads (`/files/{id}`).
//!
//! Downloads stream from the store: `GET`/`HEAD`, one `Range` (206/416),
//! a strong `ETag` from the content hash with `If-None-Match`/`If-Range`,
//! and a `Content-Disposition` with an RFC 6266 `filename*`. Bytes of any
//! type are served as attachments by default and never sniffed or run as
//! active content on this origin.

use std::ops::Range;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tusk_core::Error as CoreError;
use tusk_core::model::{FileId, FileQuery, FileRecord, Timestamp};
use tusk_core::name::base_name;

use super::error::{ApiError, ApiResult};
use super::request::{Path, Query, json};
use super::views::{FileView, download_path, unix_now};
use super::{AppState, Caller, identify};

fn file_id(raw: &str) -> ApiResult<FileId> {
    FileId::parse(raw).ok_or(ApiError::Core(CoreError::FileNotFound))
}

/// Query of `GET /api/v1/files`.
#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    q: Option<String>,
}

/// `GET /api/v1/files?limit=&cursor=&q=`: newest first.
pub async fn list(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let limit = match query.limit.as_deref() {
        None => 100,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest("limit must be an integer from 1 to 1000".into())
            })?,
    };
    let page = app
        .service
        .list_files(&FileQuery {
            owner,
            search: query.q.filter(|q| !q.is_empty()),
            cursor: query.cursor.filter(|c| !c.is_empty()),
            limit,
        })
        .await?;
    let files = FileView::all(&app, &page.files).await?;
    Ok(Json(json!({ "files": files, "next_cursor": page.next_cursor })).into_response())
}

/// `GET /api/v1/files/{id}`.
pub async fn show(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let file = app.service.get_file(&owner, &file_id(&id)?).await?;
    Ok(Json(json!({ "file": FileView::of(&app, &file).await? })).into_response())
}

/// The body of `PATCH /api/v1/files/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileChange {
    public: bool,
}

/// `PATCH /api/v1/files/{id}` with `{"public": true}`: anyone may download
/// the file (`false`: only its owner and signed links again).
pub async fn update(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = file_id(&id)?;
    let change = json::<FileChange>(body).await?;
    let file = app.service.set_public(&owner, &id, change.public).await?;
    Ok(Json(json!({ "file": FileView::of(&app, &file).await? })).into_response())
}

/// The body of `POST /api/v1/files/{id}/link`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// Seconds the link works; one hour when absent.
    expires_in: Option<u64>,
}

/// The longest a signed link may work: 30 days.
const MAX_LINK_SECS: u64 = 30 * 24 * 3600;

/// `POST /api/v1/files/{id}/link`: a download link that works without a
/// token until it expires.
pub async fn link(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = file_id(&id)?;
    let req = json::<LinkRequest>(body).await?;
    let secs = req.expires_in.unwrap_or(3600);
    if !(1..=MAX_LINK_SECS).contains(&secs) {
        return Err(ApiError::InvalidRequest(format!(
            "expires_in must be from 1 to {MAX_LINK_SECS} seconds"
        )));
    }
    let file = app.service.get_file(&owner, &id).await?;
    let expires = unix_now() + secs;
    let query = app.service.sign_link(&file.id, expires).await?;
    let expires_at = Timestamp(expires as i64 * 1000);
    Ok(Json(json!({
        "url": format!("{}?{query}", download_path(&file)),
        "expires_at": expires_at,
    }))
    .into_response())
}

/// `DELETE /api/v1/files/{id}`.
pub async fn delete(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.service.delete_file(&owner, &file_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of a download.
#[derive(Deserialize)]
pub struct DownloadQuery {
    /// `inline=1` asks browsers to show the file instead of saving it.
    inline: Option<String>,
    /// A signed link: when it stops working (seconds since the epoch)…
    expires: Option<u64>,
    /// …and its signature.
    sig: Option<String>,
}

/// `GET`/`HEAD /files/{id}` (also `/files/{id}/{name}`; the name is only
/// for humans and tools that save under the URL's last segment).
///
/// Who may: the file's owner (bearer token), anyone holding a signed link
/// that has not expired, and anyone at all for a public file.
pub async fn download(
    State(app): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let raw_id = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let id = file_id(raw_id)?;
    let file = readable(&app, &id, &query, &headers).await?;
    let size = file.blob.size;
    let last_modified = httpdate::fmt_http_date(file.created_at.to_system_time());
    let etag = format!("\"{}\"", file.blob.hash.to_hex());

    let mut head = HeaderMap::new();
    head.insert(ETAG, value(&etag));
    head.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    head.insert(LAST_MODIFIED, value(&last_modified));
    head.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if if_none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, head).into_response());
    }
    let range = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_holds(&headers, &etag, &last_modified) => parse_range(r, size)?,
        _ => None,
    };
    let inline = query
        .inline
        .as_deref()
        .is_some_and(|v| v != "0" && v != "false")
        && previewable(&file.mime);
    head.insert(CONTENT_TYPE, value(&file.mime));
    head.insert(
        CONTENT_DISPOSITION,
        value(&content_disposition(&file, inline)),
    );
    head.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !file.mime.starts_with("application/pdf") {
        // Browsers refuse to show PDFs in a sandbox; PDFs run no page script.
        head.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'"),
        );
    }

    let download = app.service.read_file(file, range.clone()).await?;
    let served = download.range.end - download.range.start;
    head.insert(CONTENT_LENGTH, HeaderValue::from(served));
    let status = match range {
        Some(r) => {
            head.insert(
                CONTENT_RANGE,
                value(&format!("bytes {}-{}/{size}", r.start, r.end - 1)),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    Ok((status, head, Body::from_stream(download.body)).into_response())
}

/// The file if this request may download it. A link's signature is checked
/// first; without one, the caller's token (if any) names the reader, and a
/// caller without a valid token is told so unless the file is public.
async fn readable(
    app: &AppState,
    id: &FileId,
    query: &DownloadQuery,
    headers: &HeaderMap,
) -> ApiResult<FileRecord> {
    if query.expires.is_some() || query.sig.is_some() {
        let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
            return Err(ApiError::InvalidLink);
        };
        if !app.service.link_holds(id, expires, sig, unix_now()).await {
            return Err(ApiError::InvalidLink);
        }
        return Ok(app.service.readable_file(None, id, true).await?);
    }
    match identify(headers, app).await {
        Ok(who) => Ok(app
            .service
            .readable_file(Some(&who.owner), id, false)
            .await?),
        Err(refused) => match app.service.readable_file(None, id, false).await {
            Ok(public) => Ok(public),
            Err(CoreError::FileNotFound) => Err(refused),
            Err(e) => Err(e.into()),
        },
    }
}

/// Types shown inline on request: media that cannot run script on this
/// origin. Anything else (HTML, SVG, …) is always an attachment.
fn previewable(mime: &str) -> bool {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/bmp"
            | "application/pdf"
            | "text/plain"
    ) || essence.starts_with("video/")
        || essence.starts_with("audio/")
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// `If-None-Match` matching `etag` (or `*`): answer 304.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// A `Range` is honoured only if `If-Range` is absent or names this
/// version: its entity tag, or exactly its `Last-Modified` date.
fn if_range_holds(headers: &HeaderMap, etag: &str, last_modified: &str) -> bool {
    match headers.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v.trim() == etag || v.trim() == last_modified,
    }
}

/// One satisfiable byte range → `Some`; no usable range → `None` (serve
/// all); a `bytes=` range that cannot be satisfied → 416. Several ranges
/// are answered with the whole file, as RFC 9110 allows.
fn parse_range(header: &str, size: u64) -> ApiResult<Option<Range<u64>>> {
    if !header.trim_start().starts_with("bytes=") || header.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    if size == 0 {
        // No byte of an empty file can be addressed.
        return Err(unsatisfiable);
    }
    let ranges = match http_range_header::parse_range_header(header)
        .map_err(|_| ApiError::RangeNotSatisfiable { size })?
        .validate(size)
    {
        Ok(ranges) => ranges,
        // A suffix longer than the file asks for all of it (RFC 9110
        // §14.1.2), which the crate refuses.
        Err(http_range_header::RangeUnsatisfiableError::FileSuffixOutOfBounds) => {
            return Ok(Some(0..size));
        }
        Err(_) => return Err(unsatisfiable),
    };
    Ok(match ranges.as_slice() {
        [one] => Some(*one.start()..*one.end() + 1),
        _ => None,
    })
}

/// `attachment` (or `inline`) with an ASCII fallback `filename` and the
/// exact name as RFC 8187 `filename*`.
fn content_disposition(file: &FileRecord, inline: bool) -> String {
    let name = base_name(&file.name);
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, RFC8187_ATTR_CHAR);
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Everything but RFC 8187 `attr-char` is percent-encoded.
const RFC8187_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-5", 100).unwrap(), Some(95..100));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert_eq!(parse_range("bytes=-200", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=-2", 1).unwrap(), Some(0..1));
        assert_eq!(parse_range("items=1-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,500-600", 100).unwrap(), None);
        for bad in ["bytes=100-", "bytes=5-2", "bytes=x-1", "bytes=-0"] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
        assert!(
            parse_range("bytes=0-0", 0).is_err(),
            "nothing to serve in an empty file"
        );
    }
    mod props {
        use proptest::prelude::*;
        use tusk_core::ContentHash;
        use tusk_core::model::{Blob, BlobId, Owner};

        use super::super::*;

        fn size() -> impl Strategy<Value = u64> {
            prop_oneof![0..300u64, any::<u64>(), Just(u64::MAX)]
        }

        /// `Range` values of every shape, biased towards byte ranges.
        fn range_header() -> impl Strategy<Value = String> {
            let number = prop_oneof![
                (0..400u64).prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                Just("18446744073709551616".to_owned()),
                Just(String::new()),
                "[0-9a-z+-]{1,4}",
            ];
            let spec = (number.clone(), number).prop_map(|(a, b)| format!("{a}-{b}"));
            prop_oneof![
                any::<String>(),
                (
                    prop_oneof![
                        Just("bytes="),
                        Just(" bytes="),
                        Just("bytes ="),
                        Just("items=")
                    ],
                    prop::collection::vec(spec, 0..3),
                    prop_oneof![Just(""), Just(" "), Just(",")],
                )
                    .prop_map(|(unit, specs, tail)| format!("{unit}{}{tail}", specs.join(","))),
            ]
        }

        fn file(name: &str) -> FileRecord {
            FileRecord {
                id: FileId::random(),
                owner: Owner::local(),
                name: name.to_owned(),
                mime: "text/plain".into(),
                blob: Blob {
                    id: BlobId::random(),
                    hash: ContentHash([0; 32]),
                    size: 1,
                    md5: None,
                    sha256: None,
                },
                created_at: Timestamp(0),
                public: false,
                md5: None,
                sha256: None,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 1024,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Any `Range`: no panic; a range served lies in the file; what
            /// is refused is 416.
            #[test]
            fn ranges_lie_in_the_file(header in range_header(), size in size()) {
                match parse_range(&header, size) {
                    Ok(Some(r)) => prop_assert!(r.start < r.end && r.end <= size, "{:?}", r),
                    Ok(None) => {}
                    Err(e) => prop_assert_eq!(e.code(), "range_not_satisfiable"),
                }
            }

            /// Well-formed single ranges give the bytes RFC 9110 names.
            #[test]
            fn byte_ranges_are_served_as_asked(size in 1..=u64::MAX, a in any::<u64>(), b in any::<u64>()) {
                let (first, last) = (a.min(b) % size, a.max(b));
                prop_assert_eq!(
                    parse_range(&format!("bytes={first}-{last}"), size).unwrap(),
                    Some(first..last.min(size - 1) + 1)
                );
                prop_assert_eq!(parse_range(&format!("bytes={first}-"), size).unwrap(), Some(first..size));
                let suffix = a.max(1);
                prop_assert_eq!(
                    parse_range(&format!("bytes=-{suffix}"), size).unwrap(),
                    Some(size - suffix.min(size)..size)
                );
                let past = size.saturating_add(a % 1000);
                if past >= size && size < u64::MAX {
                    let header = format!("bytes={past}-");
                    prop_assert!(parse_range(&header, size).is_err());
                }
            }

            /// Whatever a file is called, its `Content-Disposition` is a
            /// valid header that names it exactly.
            #[test]
            fn dispositions_are_valid_headers(raw in any::<String>(), inline in any::<bool>()) {
                let Ok(name) = tusk_core::name::normalize(&raw) else {
                    return Ok(());
                };
                let text = content_disposition(&file(&name), inline);
                prop_assert!(HeaderValue::from_str(&text).is_ok(), "{}", text);
                let encoded = text.split("filename*=UTF-8''").nth(1).unwrap();
                let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8().unwrap();
                prop_assert_eq!(decoded, base_name(&name));
            }

            /// Conditional headers of any shape are read without panicking.
            #[test]
            fn conditions_never_panic(v in prop::collection::vec(0x20u8..0x7f, 0..60)) {
                let mut h = HeaderMap::new();
                let v = HeaderValue::from_bytes(&v).unwrap();
                h.insert(IF_NONE_MATCH, v.clone());
                h.insert(IF_RANGE, v);
                let _ = if_none_match(&h, "\"x\"");
                let _ = if_range_holds(&h, "\"x\"", "Thu, 01 Jan 1970 00:00:00 GMT");
            }
        }
    }
}
