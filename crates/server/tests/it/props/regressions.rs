//! Requests the properties once found answered wrongly, kept as plain
//! tests.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, random_bytes};

/// A path segment that is not UTF-8 once percent-decoded got axum's
/// plain-text 400 instead of the JSON error, on every route with a
/// parameter.
#[tokio::test]
async fn segments_that_are_not_utf8_get_the_json_error() {
    let s = TestServer::start().await;
    let file = s.upload("a.bin", &random_bytes(10)).await;
    let id = file["id"].as_str().unwrap();
    let requests = [
        ("GET", format!("/files/{id}/%FF")),
        ("GET", "/files/%C3%28".to_owned()),
        ("GET", "/api/v1/files/%80".to_owned()),
        ("GET", "/api/v1/uploads/%FF".to_owned()),
        ("PUT", "/api/v1/uploads/%FF/chunks/0".to_owned()),
        ("PUT", "/api/v1/uploads/x/chunks/%FF".to_owned()),
        ("PATCH", "/tus/%80".to_owned()),
        ("GET", "/web/%FF".to_owned()),
    ];
    for (method, path) in requests {
        let r = s
            .http
            .request(method.parse().unwrap(), s.url(&path))
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_eq!(
            body["error"]["code"], "invalid_request",
            "{method} {path}: {body}"
        );
    }
}
