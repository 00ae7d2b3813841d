//! tus 1.0.0 over real HTTP, rule by rule: discovery, versions, creation
//! (with upload, deferred length, empty), HEAD, PATCH offsets and lengths,
//! termination, expiration, one PATCH at a time, and a tus upload as a
//! file of the JSON API.

use crate::common;

use common::tus::{
    OCTETS, b64, chunked_patch, header, location, number, read_head, send_chunk, send_head,
};
use common::{MIB, TestServer, random_bytes};
use reqwest::{Method, StatusCode};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn options_tells_what_the_server_supports() {
    let s = TestServer::start_with(|c| c.max_file_size = 5 << 30).await;
    for path in ["/tus/", "/tus"] {
        let r = s
            .http
            .request(Method::OPTIONS, s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&r, "tus-version"), "1.0.0");
        assert_eq!(number(&r, "tus-max-size"), 5 << 30);
        let extensions = header(&r, "tus-extension");
        for ext in [
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "checksum",
            "checksum-trailer",
            "expiration",
            "concatenation",
            "concatenation-unfinished",
        ] {
            assert!(
                extensions.split(',').any(|e| e == ext),
                "{ext} in {extensions}"
            );
        }
        let algorithms = header(&r, "tus-checksum-algorithm");
        for alg in ["sha1", "md5", "sha256"] {
            assert!(
                algorithms.split(',').any(|a| a == alg),
                "{alg} in {algorithms}"
            );
        }
        assert!(r.headers().get("tus-resumable").is_none(), "not on OPTIONS");
    }
}

#[tokio::test]
async fn every_request_but_options_names_the_version() {
    let s = TestServer::start().await;
    let path = s.tus_create(10).await;
    let requests = [
        (Method::POST, "/tus/".to_owned()),
        (Method::HEAD, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
    ];
    for version in [None, Some("0.2.2"), Some("1.0")] {
        for (method, p) in &requests {
            let mut req = s
                .http
                .request(method.clone(), s.url(p))
                .header("upload-length", 10)
                .header("upload-offset", 0)
                .header("content-type", OCTETS);
            if let Some(v) = version {
                req = req.header("tus-resumable", v);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::PRECONDITION_FAILED,
                "{method} {version:?}"
            );
            assert_eq!(header(&r, "tus-version"), "1.0.0");
            assert_eq!(header(&r, "tus-resumable"), "1.0.0");
        }
    }
    // Nothing changed: the upload is there, at offset 0.
    assert_eq!(s.tus_offset(&path).await, 0);
}

#[tokio::test]
async fn an_upload_from_creation_to_file() {
    let s = TestServer::start().await;
    let data = random_bytes(9 * MIB + 123);
    let meta = format!(
        "filename {},filetype {}, is_confidential",
        b64("reports/q3 résumé.pdf".as_bytes()),
        b64(b"application/pdf")
    );
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", data.len())
        .header("upload-metadata", &meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    let expires = httpdate::parse_http_date(&header(&r, "upload-expires")).unwrap();
    assert!(expires > std::time::SystemTime::now());
    let path = location(&r);

    let r = s.tus_head(&path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(number(&r, "upload-offset"), 0);
    assert_eq!(number(&r, "upload-length"), data.len() as u64);
    assert_eq!(header(&r, "upload-metadata"), meta, "echoed as sent");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    assert!(r.headers().get("upload-concat").is_none());
    assert!(r.headers().get("upload-defer-length").is_none());

    // Pieces of odd sizes, across blocks and chunks.
    let mut at = 0;
    for piece in data.chunks(3 * MIB + 7) {
        let r = s.tus_patch(&path, at as u64, piece).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        at += piece.len();
        assert_eq!(number(&r, "upload-offset"), at as u64);
        httpdate::parse_http_date(&header(&r, "upload-expires")).unwrap();
        assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    }
    let r = s.tus_head(&path).await;
    assert_eq!(number(&r, "upload-offset"), data.len() as u64);

    // It is a file of the JSON API now, named and typed by its metadata.
    let file = s.tus_file(&path).await;
    assert_eq!(file["name"], "reports/q3 résumé.pdf");
    assert_eq!(file["mime"], "application/pdf");
    assert_eq!(file["size"], data.len());
    assert_eq!(file["hash"], common::hash(&data));
    assert!(s.download(&file).await == data);
    // GET on the upload leads to the file.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), file["url"].as_str().unwrap());
    // A PATCH with nothing more at the end changes nothing.
    let r = s.tus_patch(&path, data.len() as u64, b"").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.all_files().await.len(), 1);
}

#[tokio::test]
async fn patch_rules() {
    let s = TestServer::start().await;
    let path = s.tus_create(100).await;
    assert_eq!(
        s.tus_patch(&path, 0, &[1; 40]).await.status(),
        StatusCode::NO_CONTENT
    );

    // The wrong offset: 409, nothing changes.
    for wrong in [0, 39, 41, 100] {
        let r = s.tus_patch(&path, wrong, &[2; 10]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "offset {wrong}");
    }
    // The wrong media type: 415.
    for ct in [None, Some("application/octet-stream"), Some("text/plain")] {
        let mut req = s.tus(Method::PATCH, &path).header("upload-offset", 40);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.body(vec![3; 10]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    // A missing or malformed offset: 400.
    for bad in [None, Some("-40"), Some("forty"), Some("4e1"), Some(" ")] {
        let mut req = s.tus(Method::PATCH, &path).header("content-type", OCTETS);
        if let Some(b) = bad {
            req = req.header("upload-offset", b);
        }
        let r = req.body(vec![3; 10]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    }
    // Past the length: 413, and none of it is stored.
    let r = s.tus_patch(&path, 40, &[4; 61]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The same without Content-Length (chunked): refused at the 101st byte.
    let mut conn = s.connect().await;
    send_head(&mut conn, &chunked_patch(&s.base, &path, 40, &[])).await;
    send_chunk(&mut conn, &[5; 30]).await;
    send_chunk(&mut conn, &[5; 31]).await;
    common::tus::send_trailers(&mut conn, &[]).await;
    let (status, _) = read_head(&mut conn).await;
    assert_eq!(status, 413);
    assert_eq!(s.tus_offset(&path).await, 40);
    // A different length than the one set: 400.
    let r = s
        .tus(Method::PATCH, &path)
        .header("content-type", OCTETS)
        .header("upload-offset", 40)
        .header("upload-length", 99)
        .body(vec![6; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.tus_offset(&path).await, 40);

    let r = s.tus_patch(&path, 40, &[7; 60]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let file = s.tus_file(&path).await;
    let mut expected = vec![1u8; 40];
    expected.extend([7u8; 60]);
    assert!(s.download(&file).await == expected);
}

#[tokio::test]
async fn creation_rules() {
    let s = TestServer::start_with(|c| c.max_file_size = 1000).await;
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = s.tus(Method::POST, "/tus/");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let refused: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("upload-length", "-1".into())],
        vec![("upload-length", "ten".into())],
        vec![("upload-length", "1.5".into())],
        vec![("upload-defer-length", "2".into())],
        vec![
            ("upload-length", "5".into()),
            ("upload-defer-length", "1".into()),
        ],
        vec![
            ("upload-length", "5".into()),
            ("upload-metadata", "a YQ==,a Yg==".into()),
        ],
        vec![
            ("upload-length", "5".into()),
            ("upload-metadata", "a not*base64".into()),
        ],
        vec![
            ("upload-length", "5".into()),
            ("upload-metadata", "a YQ==,,b".into()),
        ],
        vec![
            ("upload-length", "5".into()),
            ("upload-concat", "sideways".into()),
        ],
    ];
    for headers in refused {
        let r = post(headers.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{headers:?}");
        assert!(r.headers().get("location").is_none());
    }
    let r = post(vec![("upload-length", "1001".into())]).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A body that is not application/offset+octet-stream: 415.
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", 5)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing was created by any of these.
    assert_eq!(s.part_count(), 0);
}

#[tokio::test]
async fn creation_with_upload_and_empty_uploads() {
    let s = TestServer::start().await;
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", 11)
        .header("upload-metadata", format!("filename {}", b64(b"hi.txt")))
        .header("content-type", OCTETS)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(number(&r, "upload-offset"), 5);
    let path = location(&r);
    assert_eq!(
        s.tus_patch(&path, 5, b" world").await.status(),
        StatusCode::NO_CONTENT
    );
    let file = s.tus_file(&path).await;
    assert_eq!(s.download(&file).await, b"hello world");

    // The whole file in the POST.
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", 3)
        .header("content-type", OCTETS)
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let file = s.tus_file(&location(&r)).await;
    assert_eq!(s.download(&file).await, b"abc");
    assert_eq!(file["name"], "untitled");

    // Upload-Length: 0 completes at once.
    let path = s.tus_create(0).await;
    let file = s.tus_file(&path).await;
    assert_eq!(file["size"], 0);
    let r = s.tus_head(&path).await;
    assert_eq!(number(&r, "upload-offset"), 0);
    assert_eq!(number(&r, "upload-length"), 0);
}

#[tokio::test]
async fn deferred_length() {
    let s = TestServer::start().await;
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-defer-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let path = location(&r);
    let r = s.tus_head(&path).await;
    assert_eq!(header(&r, "upload-defer-length"), "1");
    assert!(r.headers().get("upload-length").is_none());
    let data = random_bytes(5 * MIB + 9);
    let (a, b) = data.split_at(4 * MIB + 1);
    assert_eq!(
        s.tus_patch(&path, 0, a).await.status(),
        StatusCode::NO_CONTENT
    );
    // The length, with the last bytes.
    let r = s
        .tus(Method::PATCH, &path)
        .header("content-type", OCTETS)
        .header("upload-offset", a.len())
        .header("upload-length", data.len())
        .body(b.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.tus_head(&path).await;
    assert_eq!(number(&r, "upload-length"), data.len() as u64);
    assert!(r.headers().get("upload-defer-length").is_none());
    let file = s.tus_file(&path).await;
    assert!(s.download(&file).await == data);
}

#[tokio::test]
async fn termination_and_unknown_uploads() {
    let s = TestServer::start().await;
    let path = s.tus_create(10).await;
    assert_eq!(
        s.tus_patch(&path, 0, b"12345").await.status(),
        StatusCode::NO_CONTENT
    );
    let r = s.tus(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    assert_eq!(s.part_count(), 0, "its bytes are gone");
    // Gone, and remembered as such.
    assert_eq!(s.tus_head(&path).await.status(), StatusCode::GONE);
    assert!(
        s.tus_head(&path)
            .await
            .headers()
            .get("upload-offset")
            .is_none()
    );
    assert_eq!(s.tus_patch(&path, 5, b"x").await.status(), StatusCode::GONE);
    assert_eq!(
        s.tus(Method::DELETE, &path).send().await.unwrap().status(),
        StatusCode::GONE
    );
    // Never there: 404.
    for unknown in [
        "/tus/0123456789abcdef0123456789abcdef",
        "/tus/not-an-id",
        "/tus/..%2Fetc",
    ] {
        let r = s.tus_head(unknown).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{unknown}");
        assert!(r.headers().get("upload-offset").is_none());
        assert_eq!(
            s.tus_patch(unknown, 0, b"x").await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // Terminating a completed upload takes its file along.
    let path = s.tus_create(3).await;
    s.tus_patch(&path, 0, b"abc").await;
    assert_eq!(s.all_files().await.len(), 1);
    let r = s.tus(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s.all_files().await.is_empty());
    assert_eq!(s.blob_count(), 0);
}

#[tokio::test]
async fn expired_uploads_are_gone() {
    // Uploads expire the moment they are idle.
    let s = TestServer::start_with(|c| c.upload_ttl = std::time::Duration::ZERO).await;
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-length", 10)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let expires = httpdate::parse_http_date(&header(&r, "upload-expires")).unwrap();
    assert!(expires <= std::time::SystemTime::now());
    let path = location(&r);
    assert_eq!(s.tus_head(&path).await.status(), StatusCode::GONE);
    assert_eq!(s.tus_patch(&path, 0, b"x").await.status(), StatusCode::GONE);
    // It can still be terminated, freeing its bytes.
    let r = s.tus(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.part_count(), 0);
}

#[tokio::test]
async fn method_override() {
    let s = TestServer::start().await;
    let path = s.tus_create(6).await;
    let r = s
        .tus(Method::POST, &path)
        .header("x-http-method-override", "PATCH")
        .header("content-type", OCTETS)
        .header("upload-offset", 0)
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(number(&r, "upload-offset"), 3);
    let r = s
        .tus(Method::POST, &path)
        .header("x-http-method-override", "HEAD")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(number(&r, "upload-offset"), 3);
    let r = s
        .tus(Method::POST, &path)
        .header("x-http-method-override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.tus_head(&path).await.status(), StatusCode::GONE);
}

#[tokio::test]
async fn an_interrupted_patch_keeps_what_arrived() {
    let s = TestServer::start().await;
    let size = 64 * MIB;
    let path = s.tus_create(size as u64).await;
    let data = random_bytes(24 * MIB + 5);
    let mut conn = s.connect().await;
    send_head(
        &mut conn,
        &[
            format!("PATCH {path} HTTP/1.1"),
            format!("Host: {}", s.base.trim_start_matches("http://")),
            "Tus-Resumable: 1.0.0".into(),
            format!("Content-Type: {OCTETS}"),
            "Upload-Offset: 0".into(),
            format!("Content-Length: {size}"),
        ],
    )
    .await;
    conn.write_all(&data).await.unwrap();
    conn.flush().await.unwrap();
    drop(conn);
    // Socket buffers hold a few MiB at most: the server has read most of
    // the 24 MiB, so the PATCH is running. HEAD waits for it to store what
    // arrived, and then counts every byte.
    assert_eq!(s.tus_offset(&path).await, data.len() as u64);
    // The rest, resumed where the server says.
    let rest = random_bytes(size - data.len());
    assert_eq!(
        s.tus_patch(&path, data.len() as u64, &rest).await.status(),
        StatusCode::NO_CONTENT
    );
    let file = s.tus_file(&path).await;
    assert!(s.download(&file).await == [data, rest].concat());
}

#[tokio::test]
async fn one_patch_at_a_time() {
    let s = TestServer::start().await;
    let path = s.tus_create(100).await;
    // A PATCH that sends 10 bytes and then waits.
    let mut slow = s.connect().await;
    send_head(&mut slow, &chunked_patch(&s.base, &path, 0, &[])).await;
    send_chunk(&mut slow, &[1; 10]).await;
    // A second PATCH while the first holds the upload: 423. (Until the
    // first has started, the second may go first and find nothing to do.)
    let mut refused = None;
    for _ in 0..500 {
        let r = s.tus_patch(&path, 0, b"").await;
        if r.status() == StatusCode::LOCKED {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let refused = refused.expect("the second PATCH was never refused");
    assert_eq!(header(&refused, "tus-resumable"), "1.0.0");
    let r = s.tus_patch(&path, 0, &[9; 5]).await;
    assert_eq!(r.status(), StatusCode::LOCKED);
    send_chunk(&mut slow, &[2; 10]).await;
    common::tus::send_trailers(&mut slow, &[]).await;
    let (status, headers) = read_head(&mut slow).await;
    assert_eq!(status, 204);
    assert!(headers.contains(&("upload-offset".into(), "20".into())));
    // No byte of the refused PATCHes went in.
    assert_eq!(
        s.tus_patch(&path, 20, &[3; 80]).await.status(),
        StatusCode::NO_CONTENT
    );
    let file = s.tus_file(&path).await;
    let expected = [vec![1u8; 10], vec![2; 10], vec![3; 80]].concat();
    assert_eq!(s.download(&file).await, expected);
}

#[tokio::test]
async fn what_tus_does_not_do() {
    let s = TestServer::start().await;
    // An upload of the JSON API has no offset: HEAD and PATCH refuse it.
    let data = random_bytes(100);
    let upload = s.start_upload("json.bin", &data).await;
    let path = format!("/tus/{}", upload["id"].as_str().unwrap());
    assert_eq!(s.tus_head(&path).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.tus_patch(&path, 0, &data).await.status(),
        StatusCode::FORBIDDEN
    );
    // Methods tus does not define: 405, saying what works.
    let r = s.tus(Method::PUT, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), "HEAD, PATCH, DELETE, GET, OPTIONS");
    let r = s.tus(Method::GET, "/tus/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), "POST, OPTIONS");
}
