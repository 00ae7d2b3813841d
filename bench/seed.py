#!/usr/bin/env python3
"""Fills a running tusk with small files for bench/run's instant-upload row.

Usage: seed.py URL COUNT OUT

Sends COUNT distinct 64-byte files through `POST /api/v1/files`
(multipart/form-data, 1000 files a request) and writes one line per file to
OUT: its `sha256-4m` hash and its size, what a check for it sends.
Standard library only; fails loudly on any answer but 201.
"""
import hashlib
import http.client
import sys
import urllib.parse

BATCH = 1000


def content(i: int) -> bytes:
    return (b"tusk bench %010d " % i) * 2 + b"\n" * 18


def sha256_4m(data: bytes) -> str:
    # One block: the SHA-256 of the block's digest (docs/api.md, section 2).
    return "sha256-4m:" + hashlib.sha256(hashlib.sha256(data).digest()).hexdigest()


def main() -> None:
    url, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    boundary = "tusk-bench-boundary"
    with open(out, "w") as lines:
        for first in range(0, count, BATCH):
            parts = []
            for i in range(first, min(first + BATCH, count)):
                data = content(i)
                parts.append(
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"seed/{i}.txt\"\r\nContent-Type: text/plain\r\n\r\n".encode()
                    + data + b"\r\n"
                )
                lines.write(f"{sha256_4m(data)} {len(data)}\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            conn.request("POST", "/api/v1/files", body,
                         {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            answer = conn.getresponse()
            text = answer.read()
            if answer.status != 201:
                sys.exit(f"seed.py: POST /api/v1/files answered {answer.status}: {text[:300]!r}")


if __name__ == "__main__":
    main()
