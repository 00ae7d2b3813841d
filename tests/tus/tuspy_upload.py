#!/usr/bin/env python3
"""Uploads one file with tuspy (the official Python tus client) and reports
what happens as JSON lines on stdout, one per event, flushed at once:

    {"event":"start","url":U,"offset":O}  the upload URL is known and the
                                          upload goes on from offset O (when
                                          resuming from the store, O is the
                                          Upload-Offset the server gave to
                                          tuspy's HEAD)
    {"event":"chunk","offset":O}          a PATCH was acknowledged; the server
                                          now holds O bytes
    {"event":"done","url":U}              the whole file is on the server

Run with tests/tus/.venv/bin/python (tests/tus/setup creates it). Any
failure exits non-zero with a message on stderr.
"""

import argparse
import json
import os
import sys

from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="creation URL, e.g. http://host/tus/")
    parser.add_argument("--file", required=True, help="file to upload")
    parser.add_argument("--chunk-size", required=True, type=int, help="bytes per PATCH")
    parser.add_argument("--store", required=True, help="file where upload URLs are kept for resuming")
    parser.add_argument("--checksum", action="store_true", help="send Upload-Checksum (sha1) with every PATCH")
    args = parser.parse_args()

    if args.chunk_size <= 0:
        parser.error("--chunk-size must be positive")

    storage = FileStorage(args.store)
    try:
        client = TusClient(args.endpoint)
        # With a URL in the store for this file's fingerprint, the constructor
        # sends HEAD to that URL and takes the server's Upload-Offset as its
        # offset; otherwise the offset is 0 and there is no URL yet.
        uploader = client.uploader(
            file_path=args.file,
            chunk_size=args.chunk_size,
            metadata={
                "filename": os.path.basename(args.file),
                "filetype": "application/octet-stream",
            },
            store_url=True,
            url_storage=storage,
            upload_checksum=args.checksum,
        )
        if not uploader.url:
            # What Uploader.upload() does first: POST to create, store the URL.
            uploader.set_url(uploader.create_url())
            uploader.offset = 0
        emit(event="start", url=uploader.url, offset=uploader.offset)

        size = uploader.get_file_size()
        while uploader.offset < size:
            before = uploader.offset
            uploader.upload_chunk()
            if uploader.offset <= before:
                raise RuntimeError(
                    f"server did not advance: offset {before} -> {uploader.offset}"
                )
            emit(event="chunk", offset=uploader.offset)
        emit(event="done", url=uploader.url)
    finally:
        storage.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # report any failure plainly, exit non-zero
        detail = ""
        for attr in ("status_code", "response_content"):
            value = getattr(error, attr, None)
            if value is not None:
                detail += f" {attr}={value!r}"
        print(f"tuspy_upload: {type(error).__name__}: {error}{detail}", file=sys.stderr)
        sys.exit(1)
