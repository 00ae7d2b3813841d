//! Form posts of many files (`POST /api/v1/files`): small parts are stored
//! in batches, large ones streamed; either way every file of a request is
//! stored, in order and deduplicated, or none is.

use crate::common;

use common::{MIB, TestServer, hash, random_bytes};
use reqwest::StatusCode;
use serde_json::Value;

const BOUNDARY: &str = "tusk-test-boundary-7d1c0e9b5a3f";

/// One file part of a hand-made `multipart/form-data` body.
fn part(filename: &str, mime: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
    )
    .into_bytes();
    if let Some(mime) = mime {
        out.extend_from_slice(format!("Content-Type: {mime}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

fn closing() -> Vec<u8> {
    format!("--{BOUNDARY}--\r\n").into_bytes()
}

async fn post(s: &TestServer, body: Vec<u8>) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// What a test sends as one file: name, media type given, bytes.
struct Sent {
    name: String,
    mime: Option<&'static str>,
    data: Vec<u8>,
}

fn sent(name: impl Into<String>, mime: Option<&'static str>, data: Vec<u8>) -> Sent {
    Sent {
        name: name.into(),
        mime,
        data,
    }
}

fn body_of(files: &[Sent]) -> Vec<u8> {
    let mut body: Vec<u8> = files
        .iter()
        .flat_map(|f| part(&f.name, f.mime, &f.data))
        .collect();
    body.extend(closing());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_files_are_stored_in_order_and_deduplicated() {
    let s = TestServer::start().await;
    let stored_before = random_bytes(16 * 1024);
    let earlier = s.upload("earlier.bin", &stored_before).await;
    let twin = random_bytes(16 * 1024);

    let mut files: Vec<Sent> = (0..300)
        .map(|i| sent(format!("small/{i:03}.bin"), None, random_bytes(16 * 1024)))
        .collect();
    // Equal content inside the request, and content stored before it.
    for i in [10, 20, 290] {
        files[i].data = twin.clone();
    }
    files[50].data = stored_before.clone();
    files[60] = sent("empty", None, Vec::new());
    files[70] = sent(
        "note.txt",
        Some("text/plain; charset=utf-8"),
        b"hello".to_vec(),
    );
    files[80] = sent(
        "pic.png",
        Some("application/octet-stream"),
        random_bytes(300),
    );
    files[90] = sent("dir\\..\\odd%22name.bin", None, random_bytes(10));
    // The edges of a small part, and large parts streamed in between.
    files[100] = sent("exactly-1MiB", None, random_bytes(MIB));
    // Labelled alike, small and streamed files come out alike.
    let odd_type = Some("Text/Plain; Charset=UTF-8");
    files[101] = sent("a\\..\\1MiB%22and-1", odd_type, random_bytes(MIB + 1));
    files[102] = sent("..\\small%22one", odd_type, random_bytes(99));
    files.insert(150, sent("big.bin", None, random_bytes(9 * MIB)));
    files.push(sent("last-twin", None, twin.clone()));

    let (status, body) = post(&s, body_of(&files)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let got = body["files"].as_array().unwrap();
    assert_eq!(got.len(), files.len());
    for (f, g) in files.iter().zip(got) {
        assert_eq!(g["size"].as_u64(), Some(f.data.len() as u64), "{g}");
        assert_eq!(g["hash"].as_str(), Some(hash(&f.data).as_str()), "{g}");
        assert!(s.download(g).await == f.data, "{g}");
    }
    let names: Vec<&str> = got.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "small/000.bin");
    assert_eq!(names[90], "dir/odd\"name.bin");
    assert_eq!(names[150], "big.bin");
    assert_eq!([names[101], names[102]], ["a/1MiB\"and-1", "small\"one"]);
    assert_eq!(got[101]["mime"], got[102]["mime"]);
    assert!(
        got[101]["mime"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("text/plain; charset=utf-8"),
        "{}",
        got[101]
    );
    assert_eq!(names[301], "last-twin");
    let mime = |i: usize| got[i]["mime"].as_str().unwrap();
    assert_eq!(
        [mime(0), mime(60), mime(70), mime(80)],
        [
            "application/octet-stream",
            "application/octet-stream",
            "text/plain; charset=utf-8",
            "image/png"
        ]
    );
    assert!(got.iter().all(|g| g.get("md5").is_none()));

    // One blob per distinct content: the twins share one, the stored
    // content is referenced, no part file is left.
    let mut hashes: Vec<&str> = got.iter().map(|g| g["hash"].as_str().unwrap()).collect();
    hashes.push(earlier["hash"].as_str().unwrap());
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(s.blob_count(), hashes.len());
    assert_eq!(hashes.len(), files.len() - 3, "four twins, one blob");
    assert_eq!(s.part_count(), 0);
    assert_eq!(s.all_files().await.len(), files.len() + 1);

    // References are counted: the stored content outlives the earlier file.
    let r = s
        .http
        .delete(s.url(&format!(
            "/api/v1/files/{}",
            earlier["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s.download(&got[50]).await == stored_before);
    for i in [10, 20, 290] {
        let r = s
            .http
            .delete(s.url(&format!("/api/v1/files/{}", got[i]["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert!(s.download(&got[301]).await == twin);
}

/// A request that stores files in several batches and streams one large
/// file before the part given fails.
fn failing_request(bad: Vec<u8>, stored_before: &[u8]) -> Vec<u8> {
    let mut files: Vec<Sent> = (0..40)
        .map(|i| sent(format!("a{i}"), None, random_bytes(8 * 1024)))
        .collect();
    files[7].data = stored_before.to_vec();
    // 20 MiB of small files: more than one batch holds.
    files.extend((0..20).map(|i| sent(format!("m{i}"), None, random_bytes(MIB))));
    files.push(sent("large", None, random_bytes(2 * MIB)));
    files.extend((0..40).map(|i| sent(format!("b{i}"), None, random_bytes(4 * 1024))));
    let mut body: Vec<u8> = files
        .iter()
        .flat_map(|f| part(&f.name, f.mime, &f.data))
        .collect();
    body.extend(bad);
    body.extend(part("after", None, b"never stored"));
    body.extend(closing());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_part_leaves_none_of_the_request() {
    let s = TestServer::start().await;
    let stored_before = random_bytes(8 * 1024);
    let earlier = s.upload("earlier.bin", &stored_before).await;
    let listing = s.all_files().await;
    let bad_parts: [(&str, Vec<u8>, &str); 4] = [
        (
            "malformed part headers",
            format!("--{BOUNDARY}\r\nthis is no header\r\n\r\nx\r\n").into_bytes(),
            "invalid_request",
        ),
        ("an empty name", part("/", None, b"x"), "invalid_name"),
        (
            "a name too long",
            part(&"n".repeat(1025), None, b"x"),
            "name_too_long",
        ),
        (
            "a body cut off inside a part",
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut\"\r\n\r\nunterminated"
            )
            .into_bytes(),
            "body_read_failed",
        ),
    ];
    for (what, bad, code) in bad_parts {
        let mut body = failing_request(bad, &stored_before);
        if code == "body_read_failed" {
            // Nothing may follow the cut.
            let cut = body
                .windows(12)
                .rposition(|w| w == b"unterminated")
                .unwrap();
            body.truncate(cut + 12);
        }
        let (status, answer) = post(&s, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert_eq!(s.all_files().await, listing, "{what}: files left");
        assert_eq!((s.blob_count(), s.part_count()), (1, 0), "{what}");
        assert!(s.download(&earlier).await == stored_before, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_part_over_the_size_limit_is_refused() {
    let s = TestServer::start_with(|c| c.max_file_size = 64 * 1024).await;
    let mut files: Vec<Sent> = (0..30)
        .map(|i| sent(format!("ok{i}"), None, random_bytes(1000)))
        .collect();
    files.push(sent("exactly-the-limit", None, random_bytes(64 * 1024)));
    let (status, body) = post(&s, body_of(&files)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["files"].as_array().unwrap().len(), 31);

    files.push(sent("too-large", None, random_bytes(64 * 1024 + 1)));
    let (status, body) = post(&s, body_of(&files)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "file_too_large");
    assert_eq!(body["error"]["max_file_size"], 64 * 1024);
    assert_eq!(s.all_files().await.len(), 31);
    assert_eq!((s.blob_count(), s.part_count()), (31, 0));
}
