//! tus extensions over real HTTP: checksums in a header and in a trailer,
//! concatenation (finished and unfinished parts), CORS for pages on other
//! origins, and tus and the JSON API sharing content.

use crate::common;

use common::tus::{
    OCTETS, b64, chunked_patch, header, location, number, read_head, send_chunk, send_head,
    send_trailers,
};
use common::{MIB, TestServer, random_bytes};
use reqwest::{Method, StatusCode};
use sha2::Digest;

fn sha1(data: &[u8]) -> String {
    b64(&sha1::Sha1::digest(data))
}

#[tokio::test]
async fn checksums_in_the_header() {
    let s = TestServer::start().await;
    let data = random_bytes(MIB + 3);
    let path = s.tus_create(data.len() as u64 * 3).await;
    let patch = |offset: u64, body: Vec<u8>, checksum: String| {
        s.tus(Method::PATCH, &path)
            .header("content-type", OCTETS)
            .header("upload-offset", offset)
            .header("upload-checksum", checksum)
            .body(body)
            .send()
    };
    // Mismatch: 460, nothing counts.
    let r = patch(0, data.clone(), format!("sha1 {}", sha1(b"other")))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 460);
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    // Unknown algorithm, or a malformed value: 400.
    for bad in ["crc32 AAAAAA==", "sha1", "sha1 ***", "md5 AAAA"] {
        let r = patch(0, data.clone(), bad.to_owned()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(s.tus_offset(&path).await, 0);
    // sha1, md5 and sha256 that match.
    let n = data.len() as u64;
    let r = patch(0, data.clone(), format!("sha1 {}", sha1(&data)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let md5 = b64(&md5::Md5::digest(&data));
    let r = patch(n, data.clone(), format!("md5 {md5}")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let sha256 = b64(&sha2::Sha256::digest(&data));
    let r = patch(2 * n, data.clone(), format!("sha256 {sha256}"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let file = s.tus_file(&path).await;
    assert!(s.download(&file).await == [&data[..], &data, &data].concat());
}

#[tokio::test]
async fn checksums_in_a_trailer() {
    let s = TestServer::start().await;
    let data = random_bytes(2 * MIB + 1);
    let (a, b) = data.split_at(MIB);
    let path = s.tus_create(data.len() as u64).await;
    let announced = ["Trailer: Upload-Checksum"];
    // A PATCH whose trailer does not match, or never comes, or is not one
    // this server can check: refused, nothing counts.
    for (trailer, status) in [
        (
            Some(format!("Upload-Checksum: sha1 {}", sha1(b"other"))),
            460,
        ),
        (None, 400),
        (Some("Upload-Checksum: crc32 AAAAAA==".to_owned()), 400),
    ] {
        let mut conn = s.connect().await;
        send_head(&mut conn, &chunked_patch(&s.base, &path, 0, &announced)).await;
        send_chunk(&mut conn, a).await;
        send_trailers(&mut conn, trailer.as_slice()).await;
        let (got, headers) = read_head(&mut conn).await;
        assert_eq!(got, status, "{trailer:?}");
        assert!(headers.contains(&("tus-resumable".into(), "1.0.0".into())));
    }
    assert_eq!(s.tus_offset(&path).await, 0);
    // Matching trailers, sent over two PATCHes.
    for (offset, piece) in [(0, a), (a.len(), b)] {
        let mut conn = s.connect().await;
        send_head(
            &mut conn,
            &chunked_patch(&s.base, &path, offset as u64, &announced),
        )
        .await;
        for part in piece.chunks(300_000) {
            send_chunk(&mut conn, part).await;
        }
        send_trailers(
            &mut conn,
            &[format!("Upload-Checksum: sha1 {}", sha1(piece))],
        )
        .await;
        let (status, headers) = read_head(&mut conn).await;
        assert_eq!(status, 204);
        let end = (offset + piece.len()).to_string();
        assert!(
            headers.contains(&("upload-offset".into(), end)),
            "{headers:?}"
        );
    }
    let file = s.tus_file(&path).await;
    assert!(s.download(&file).await == data);
}

#[tokio::test]
async fn an_interrupted_patch_with_a_checksum_keeps_nothing() {
    let s = TestServer::start().await;
    let path = s.tus_create(4 * MIB as u64).await;
    let piece = random_bytes(3 * MIB);
    let mut conn = s.connect().await;
    let checksum = format!("Upload-Checksum: sha1 {}", sha1(&piece));
    send_head(
        &mut conn,
        &chunked_patch(&s.base, &path, 0, &[checksum.as_str()]),
    )
    .await;
    send_chunk(&mut conn, &piece[..2 * MIB]).await;
    drop(conn);
    // Once the server let go of the upload, its offset is unchanged.
    loop {
        let r = s.tus_patch(&path, 0, b"").await;
        if r.status() != StatusCode::LOCKED {
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
            break;
        }
    }
    assert_eq!(s.tus_offset(&path).await, 0);
}

/// Creates a partial upload holding `data`; returns its path.
async fn partial(s: &TestServer, data: &[u8]) -> String {
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", "partial")
        .header("upload-length", data.len())
        .header("content-type", OCTETS)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(number(&r, "upload-offset"), data.len() as u64);
    location(&r)
}

#[tokio::test]
async fn concatenation() {
    let s = TestServer::start().await;
    let pieces = [
        random_bytes(3 * MIB + 5),
        random_bytes(MIB - 1),
        random_bytes(2 * MIB),
    ];
    let mut parts = Vec::new();
    for p in &pieces {
        parts.push(partial(&s, p).await);
    }
    let r = s.tus_head(&parts[0]).await;
    assert_eq!(header(&r, "upload-concat"), "partial");
    // A final upload takes no length and no body.
    let concat = format!("final;{} {}{}", parts[0], s.base, parts[1]) + " " + &parts[2];
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", &concat)
        .header("upload-length", 10)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .tus(Method::POST, "/tus/")
        .header(
            "upload-concat",
            format!("final;{} /tus/0123456789abcdef0123456789abcdef", parts[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an unknown part");
    let meta = format!("filename {}", b64(b"joined.bin"));
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", &concat)
        .header("upload-metadata", &meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let fin = location(&r);
    let whole = pieces.concat();
    let r = s.tus_head(&fin).await;
    assert_eq!(number(&r, "upload-length"), whole.len() as u64);
    assert_eq!(number(&r, "upload-offset"), whole.len() as u64);
    assert_eq!(header(&r, "upload-metadata"), meta);
    let expected = format!("final;{}", parts.join(" "));
    assert_eq!(header(&r, "upload-concat"), expected);
    // Nobody writes to a final upload.
    let r = s.tus_patch(&fin, whole.len() as u64, b"x").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let file = s.tus_file(&fin).await;
    assert_eq!(file["name"], "joined.bin");
    assert!(s.download(&file).await == whole);
    // The parts went into it and are gone; one blob holds the bytes.
    for p in &parts {
        assert_eq!(s.tus_head(p).await.status(), StatusCode::GONE);
    }
    assert_eq!(s.blob_count(), 1);
    assert_eq!(s.all_files().await.len(), 1, "parts are not files");
}

#[tokio::test]
async fn concatenation_of_unfinished_parts() {
    let s = TestServer::start().await;
    let a = random_bytes(MIB + 7);
    let b = random_bytes(5);
    // Parts created with a deferred length, the final before any byte.
    let mut parts = Vec::new();
    for _ in 0..2 {
        let r = s
            .tus(Method::POST, "/tus/")
            .header("upload-concat", "partial")
            .header("upload-defer-length", "1")
            .send()
            .await
            .unwrap();
        parts.push(location(&r));
    }
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", format!("final;{} {}", parts[0], parts[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let fin = location(&r);
    let r = s.tus_head(&fin).await;
    assert_eq!(number(&r, "upload-offset"), 0);
    assert_eq!(header(&r, "upload-defer-length"), "1");
    assert!(header(&r, "upload-concat").starts_with("final;"));
    let r = s.tus(Method::GET, &fin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "no file yet");
    // The parts arrive; the last byte of the last part completes the final.
    for (path, data) in [(&parts[1], &b), (&parts[0], &a)] {
        let r = s
            .tus(Method::PATCH, path)
            .header("content-type", OCTETS)
            .header("upload-offset", 0)
            .header("upload-length", data.len())
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = s.tus_head(&fin).await;
    assert_eq!(number(&r, "upload-length"), (a.len() + b.len()) as u64);
    assert_eq!(number(&r, "upload-offset"), (a.len() + b.len()) as u64);
    let file = s.tus_file(&fin).await;
    assert!(s.download(&file).await == [a, b].concat());
}

#[tokio::test]
async fn cors_for_pages_on_any_origin_once_tokens_exist() {
    let s = TestServer::start().await;
    let token = s
        .service
        .create_token("ann", None, false)
        .await
        .unwrap()
        .secret;
    let r = s
        .http
        .request(Method::OPTIONS, s.url("/tus/"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "tus-resumable,upload-offset,content-type,upload-checksum",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example"
    );
    assert!(header(&r, "access-control-allow-methods").contains("PATCH"));
    let allowed = header(&r, "access-control-allow-headers").to_ascii_lowercase();
    for h in [
        "tus-resumable",
        "upload-offset",
        "content-type",
        "upload-checksum",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert_eq!(
        header(&r, "tus-version"),
        "1.0.0",
        "discovery still answers"
    );

    let r = s
        .tus(Method::POST, "/tus/")
        .header("origin", "https://app.example")
        .bearer_auth(&token)
        .header("upload-length", 5)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example"
    );
    let exposed = header(&r, "access-control-expose-headers").to_ascii_lowercase();
    for h in [
        "location",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "upload-expires",
        "upload-concat",
        "tus-resumable",
        "tus-version",
        "tus-extension",
        "tus-max-size",
    ] {
        assert!(
            exposed.split(',').any(|e| e.trim() == h),
            "{h} in {exposed}"
        );
    }
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn cors_for_chosen_origins() {
    let s = TestServer::start_with(|c| {
        c.cors_origins = vec!["https://a.example".into(), "http://localhost:5173".into()]
    })
    .await;
    for (origin, allowed) in [
        ("https://a.example", true),
        ("http://localhost:5173", true),
        ("https://b.example", false),
    ] {
        let r = s
            .http
            .request(Method::OPTIONS, s.url("/tus/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let got = r.headers().get("access-control-allow-origin");
        if allowed {
            assert_eq!(got.unwrap(), origin);
        } else {
            assert!(got.is_none(), "{origin}");
        }
    }
}

#[tokio::test]
async fn tus_and_the_json_api_share_content() {
    let s = TestServer::start().await;
    let data = random_bytes(9 * MIB + 1);
    // tus first, then the JSON API: instant.
    let path = s.tus_create(data.len() as u64).await;
    assert_eq!(
        s.tus_patch(&path, 0, &data).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, body) = s
        .create(&serde_json::json!({ "name": "again.bin", "size": data.len(), "hash": common::hash(&data) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "complete");
    assert_eq!(s.blob_count(), 1);

    // The JSON API first, then tus: the tus upload's own copy is dropped.
    let other = random_bytes(5 * MIB + 3);
    s.upload("first.bin", &other).await;
    let path = s.tus_create(other.len() as u64).await;
    assert_eq!(
        s.tus_patch(&path, 0, &other).await.status(),
        StatusCode::NO_CONTENT
    );
    let file = s.tus_file(&path).await;
    assert_eq!(file["hash"], common::hash(&other));
    assert_eq!(s.blob_count(), 2);
    assert_eq!(s.part_count(), 0);
    assert_eq!(s.all_files().await.len(), 4);
}
