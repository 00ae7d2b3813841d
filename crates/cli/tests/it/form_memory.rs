//! A `multipart/form-data` body without its boundary costs the server
//! next to no memory: `tusk serve` answers 400 after reading a few KiB of
//! it, while the client is still sending, and its peak memory stays near
//! where it was.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Server;

const MIB: usize = 1 << 20;
const BODY: usize = 64 * MIB;

/// `VmRSS` or `VmHWM` (peak) of a process, in bytes.
fn memory(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kib: usize = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn a_body_without_its_boundary_costs_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let pid = server.child.id();
    let before = memory(pid, "VmRSS:");

    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /api/v1/files HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: {BODY}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut writer = stream.try_clone().unwrap();
    let counter = sent.clone();
    // Ends on its own once the server closes the connection.
    std::thread::spawn(move || {
        let piece = vec![b'A'; 64 * 1024];
        while counter.load(Ordering::SeqCst) < BODY {
            if writer.write_all(&piece).is_err() {
                return;
            }
            counter.fetch_add(piece.len(), Ordering::SeqCst);
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"}}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let sent = sent.load(Ordering::SeqCst);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
    assert!(sent < BODY / 2, "answered after {sent} of {BODY} bytes");

    let peak = memory(pid, "VmHWM:");
    assert!(
        peak < before + 16 * MIB,
        "the peak grew from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
}
