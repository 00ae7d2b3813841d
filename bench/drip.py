#!/usr/bin/env python3
"""Slow clients for bench/fairness.sh: chunk PUTs that drip.

Usage: drip.py URL COUNT RATE

Creates COUNT uploads of 8 MiB through the JSON API (distinct made-up
hashes: the chunks never complete), opens one chunk PUT for each, and sends
RATE bytes per second on every one of them, in eight pieces a second, until
it is killed. Prints "dripping" once every connection has sent its first
piece. Standard library only; fails loudly if the server answers or
closes a drip.
"""
import hashlib
import http.client
import json
import select
import socket
import sys
import time
import urllib.parse

SIZE = 8 << 20
TICKS = 8


def main() -> None:
    url, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname, parsed.port
    conns = []
    for i in range(count):
        made_up = hashlib.sha256(b"drip %d %f" % (i, time.time())).hexdigest()
        api = http.client.HTTPConnection(host, port)
        body = json.dumps({"name": f"drip-{i}.bin", "size": SIZE, "hash": f"sha256-4m:{made_up}"})
        api.request("POST", "/api/v1/uploads", body, {"Content-Type": "application/json"})
        answer = api.getresponse()
        created = json.loads(answer.read())
        if answer.status != 201:
            sys.exit(f"creating an upload answered {answer.status}: {created}")
        upload = created["upload"]
        api.close()
        sock = socket.create_connection((host, port))
        head = (
            f"PUT /api/v1/uploads/{upload['id']}/chunks/0 HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nContent-Length: {upload['chunk_size']}\r\n\r\n"
        )
        sock.sendall(head.encode())
        conns.append(sock)
    piece = b"d" * max(1, rate // TICKS)
    first = True
    while True:
        for sock in conns:
            sock.sendall(piece)
        readable, _, _ = select.select(conns, [], [], 0)
        if readable:
            sys.exit("the server answered or closed a dripping request")
        if first:
            print("dripping", flush=True)
            first = False
        time.sleep(1 / TICKS)


if __name__ == "__main__":
    main()
