//! Who may reach a server from where. Without tokens: no CORS grant unless
//! the origin is listed, pages of other origins and hosts other than
//! loopback names are refused (and change nothing); with a token created,
//! pages of any origin are granted as before.

use crate::common;

use common::TestServer;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

const EVIL: &str = "https://evil.example";

fn grant(r: &Response) -> Option<String> {
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn code(r: Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn preflight(s: &TestServer, path: &str, origin: &str) -> RequestBuilder {
    s.http
        .request(Method::OPTIONS, s.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "DELETE")
}

fn form(name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"planted".to_vec()).file_name(name.to_owned()),
    )
}

/// The port the test server listens on.
fn port(s: &TestServer) -> u16 {
    s.base.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_open_server_grants_no_other_origin() {
    let s = TestServer::start().await;
    let file = s.upload("mine.txt", b"private").await;
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());

    let r = preflight(&s, &path, EVIL).send().await.unwrap();
    assert_eq!(grant(&r), None);
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(grant(&r), None);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(r).await, "origin_not_allowed");

    // A form another site's page posts (browsers send those without a
    // preflight) stores nothing; a delete changes nothing.
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("origin", EVIL)
        .multipart(form("planted.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .http
        .delete(s.url(&path))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let names: Vec<Value> = s
        .all_files()
        .await
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, ["mine.txt"]);

    // The server's own page (same origin) goes on working.
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("origin", &s.base)
        .multipart(form("own.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_open_server_grants_the_origins_listed() {
    let s = TestServer::start_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let r = preflight(&s, "/api/v1/files/x", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(grant(&r).as_deref(), Some("https://app.example"));
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(grant(&r).as_deref(), Some("https://app.example"));
    let r = preflight(&s, "/api/v1/files/x", EVIL).send().await.unwrap();
    assert_eq!(grant(&r), None);
}

#[tokio::test]
async fn a_token_created_while_running_opens_cors_to_any_origin() {
    let s = TestServer::start().await;
    let r = preflight(&s, "/api/v1/files/x", EVIL).send().await.unwrap();
    assert_eq!(grant(&r), None);

    let token = s
        .service
        .create_token("ann", None, false)
        .await
        .unwrap()
        .secret;
    let r = preflight(&s, "/api/v1/files/x", EVIL).send().await.unwrap();
    assert_eq!(grant(&r).as_deref(), Some(EVIL));
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("origin", EVIL)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(grant(&r).as_deref(), Some(EVIL));
    // Without the token the page gets nothing: a browser never adds one.
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Any host may be named once tokens guard the server.
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("host", "files.example.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_open_server_refuses_other_hosts_and_changes_nothing() {
    let s = TestServer::start().await;
    let file = s.upload("mine.txt", b"private").await;
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());
    for (method, path) in [
        (Method::GET, "/api/v1/files"),
        (Method::DELETE, path.as_str()),
        (Method::GET, "/"),
        (Method::GET, "/metrics"),
    ] {
        let r = s
            .http
            .request(method.clone(), s.url(path))
            .header("host", format!("evil.example:{}", port(&s)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::MISDIRECTED_REQUEST,
            "{method} {path}"
        );
        assert_eq!(code(r).await, "host_not_allowed");
    }
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("host", "evil.example")
        .multipart(form("planted.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let names: Vec<Value> = s
        .all_files()
        .await
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, ["mine.txt"]);

    // Load balancers still get their answers.
    for probe in ["/healthz", "/readyz"] {
        let r = s
            .http
            .get(s.url(probe))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{probe}");
    }
}

#[tokio::test]
async fn an_open_server_answers_loopback_names() {
    let s = TestServer::start().await;
    let port = port(&s);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("tusk.localhost:{port}"),
        "localhost".to_owned(),
    ] {
        let r = s
            .http
            .get(s.url("/api/v1/files"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn an_open_server_answers_its_public_url() {
    let s =
        TestServer::start_with(|c| c.public_url = Some("https://files.example.com".into())).await;
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("host", "files.example.com")
        .header("origin", "https://files.example.com")
        .multipart(form("via-proxy.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .http
        .get(s.url("/api/v1/files"))
        .header("host", "other.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
}
