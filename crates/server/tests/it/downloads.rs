//! Downloads: HEAD, Range, ETag, conditional requests, safe headers.

use crate::common;

use common::{MIB, TestServer, random_bytes};
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    IF_RANGE, RANGE,
};
use serde_json::json;

#[tokio::test]
async fn ranges_and_conditionals() {
    let s = TestServer::start().await;
    let data = random_bytes(5 * MIB + 17);
    let file = s.upload("data.bin", &data).await;
    let url = s.url(file["url"].as_str().unwrap());
    let size = data.len();

    let head = s.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[CONTENT_LENGTH], size.to_string().as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let etag = head.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            &file["hash"].as_str().unwrap()["sha256-4m:".len()..]
        )
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let ranged = |range: &str| s.http.get(&url).header(RANGE, range).send();
    for (range, start, end) in [
        ("bytes=0-9", 0, 10),
        ("bytes=4194300-4194310", 4_194_300, 4_194_311),
        (&format!("bytes={}-", size - 3) as &str, size - 3, size),
        ("bytes=-100", size - 100, size),
        (&format!("bytes=10-{}", size + 1000), 10, size),
    ] {
        let r = ranged(range).await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            r.headers()[CONTENT_RANGE],
            format!("bytes {start}-{}/{size}", end - 1).as_str()
        );
        assert_eq!(
            r.headers()[CONTENT_LENGTH],
            (end - start).to_string().as_str()
        );
        assert!(r.bytes().await.unwrap() == data[start..end], "{range}");
    }
    for range in [&format!("bytes={size}-") as &str, "bytes=9-3", "bytes=abc"] {
        let r = ranged(range).await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            r.headers()[CONTENT_RANGE],
            format!("bytes */{size}").as_str()
        );
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "range_not_satisfiable"
        );
    }
    // Several ranges, or another unit: the whole file.
    for range in [
        "bytes=0-1,5-9",
        "lines=1-2",
        &format!("bytes=0-1,{size}-") as &str,
    ] {
        let r = ranged(range).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{range}");
        assert_eq!(r.bytes().await.unwrap().len(), size);
    }

    let r = s
        .http
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = s
        .http
        .get(&url)
        .header(IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // If-Range: the range only while the version is the same.
    let r = s
        .http
        .get(&url)
        .header(RANGE, "bytes=0-0")
        .header(IF_RANGE, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let r = s
        .http
        .get(&url)
        .header(RANGE, "bytes=0-0")
        .header(IF_RANGE, "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), size);

    // The name in the URL is decoration; the id decides.
    let bare = s.url(&format!("/files/{}", file["id"].as_str().unwrap()));
    assert!(
        s.http
            .get(&bare)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            == data
    );
}

#[tokio::test]
async fn names_types_and_inline_previews() {
    let s = TestServer::start().await;
    let photo = s.upload("相册/海边 \"日落\".png", b"\x89PNG fake").await;
    let r = s
        .http
        .get(s.url(photo["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "image/png");
    let cd = r.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.starts_with("attachment; filename=\""), "{cd}");
    assert!(
        cd.ends_with("filename*=UTF-8''%E6%B5%B7%E8%BE%B9%20%22%E6%97%A5%E8%90%BD%22.png"),
        "{cd}"
    );
    assert!(
        !cd[..cd.find("filename*").unwrap()].contains("\"日"),
        "the fallback is ASCII: {cd}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    let inline = s
        .http
        .get(s.url(&format!("{}?inline=1", photo["url"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert!(
        inline.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );

    // Active content is never shown inline on this origin.
    let page = s.upload("page.html", b"<script>alert(1)</script>").await;
    let r = s
        .http
        .get(s.url(&format!("{}?inline=1", page["url"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "text/html");
    assert!(
        r.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    // A declared type wins over the name's.
    let (_, body) = s
        .create(&json!({ "name": "notes", "size": 0, "hash": common::hash(b""), "mime": "text/markdown; charset=utf-8" }))
        .await;
    let id = body["upload"]["id"].as_str().unwrap();
    let (_, done) = s.complete(id).await;
    assert_eq!(done["file"]["mime"], "text/markdown; charset=utf-8");
}

#[tokio::test]
async fn listing_pages_and_search() {
    let s = TestServer::start().await;
    for i in 0..5 {
        s.upload(&format!("dir/File-{i}.txt"), format!("n{i}").as_bytes())
            .await;
    }
    let (_, page) = s.get_json("/api/v1/files?limit=2").await;
    let names: Vec<&str> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dir/File-4.txt", "dir/File-3.txt"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = s
        .get_json(&format!("/api/v1/files?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(next["files"][0]["name"], "dir/File-2.txt");
    let (_, found) = s.get_json("/api/v1/files?q=file-3").await;
    assert_eq!(found["files"].as_array().unwrap().len(), 1);
    assert_eq!(found["next_cursor"], serde_json::Value::Null);
    let fid = found["files"][0]["id"].as_str().unwrap();
    let (status, one) = s.get_json(&format!("/api/v1/files/{fid}")).await;
    assert_eq!(
        (status, &one["file"]["name"]),
        (StatusCode::OK, &json!("dir/File-3.txt"))
    );
}
