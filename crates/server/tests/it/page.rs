//! The browser page: served at `/` from the binary, with its modules,
//! revalidated by ETag, and locked to this server by its CSP.

use crate::common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn the_page_and_its_modules_are_served() {
    let s = TestServer::start().await;
    let r = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/web/js/app.js">"#));

    // Every module the page imports is there, as JavaScript.
    let mut pending = vec!["/web/js/app.js".to_owned()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        if seen.contains(&path) {
            continue;
        }
        let r = s.http.get(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{path}"
        );
        let text = r.text().await.unwrap();
        for spec in text
            .split(['\'', '"'])
            .filter(|w| w.starts_with("./") && w.ends_with(".js"))
        {
            pending.push(format!("/web/js/{}", &spec[2..]));
        }
        seen.push(path);
    }
    for module in [
        "queue.js",
        "hash.js",
        "hash-worker.js",
        "sha256.js",
        "upload.js",
    ] {
        assert!(
            seen.iter().any(|p| p.ends_with(module)),
            "{module} in {seen:?}"
        );
    }
    for asset in ["/web/style.css", "/web/icon.svg"] {
        let r = s.http.get(s.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
    }
}

#[tokio::test]
async fn assets_revalidate_by_etag() {
    let s = TestServer::start().await;
    let r = s.http.get(s.url("/web/style.css")).send().await.unwrap();
    let etag = r.headers()["etag"].clone();
    let again = s
        .http
        .get(s.url("/web/style.css"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = s
        .http
        .get(s.url("/web/style.css"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_assets_and_methods_get_json_errors() {
    let s = TestServer::start().await;
    for path in [
        "/web/nope.js",
        "/web/../Cargo.toml",
        "/web/js/",
        "/index.html",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let r = s.http.post(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
}
