#!/usr/bin/env node
// Uploads one file with tus-js-client (its Node build) and reports what
// happens as JSON lines on stdout, one per event:
//
//   {"event":"start","url":U,"offset":O}  the upload URL is known and the
//                                         upload goes on from offset O: 0 for
//                                         a new upload, the Upload-Offset of
//                                         the server's answer to HEAD when
//                                         resuming from the store
//   {"event":"chunk","offset":O}          a PATCH was acknowledged; the
//                                         server now holds O bytes
//   {"event":"done","url":U}              the whole file is on the server
//
// With --parallel N (tus-js-client's parallelUploads: N partial uploads and
// a final concatenation) the offsets are the sums over the partial uploads,
// "url" of the start line is null (its "parts" holds the partial URLs) and
// "url" of the done line is the final upload's.
//
// Usage: node tusjs_upload.mjs --endpoint URL --file PATH --chunk-size N
//                              --store STOREFILE [--parallel N]
// Run `tests/tus/setup` first. Any failure exits non-zero with a message on
// stderr.

import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { FileUrlStorage, Upload } from 'tus-js-client'

function fail(message) {
  process.stderr.write(`tusjs_upload: ${message}\n`)
  process.exit(1)
}

function emit(event) {
  // A synchronous write: the line is out before the next request goes.
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

let args
try {
  args = parseArgs({
    options: {
      endpoint: { type: 'string' },
      file: { type: 'string' },
      'chunk-size': { type: 'string' },
      store: { type: 'string' },
      parallel: { type: 'string', default: '1' },
    },
    strict: true,
  }).values
} catch (err) {
  fail(err.message)
}
for (const name of ['endpoint', 'file', 'chunk-size', 'store']) {
  if (args[name] === undefined) fail(`--${name} is required`)
}
const chunkSize = Number(args['chunk-size'])
const parallel = Number(args.parallel)
if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) fail('--chunk-size must be a positive integer')
if (!Number.isSafeInteger(parallel) || parallel <= 0) fail('--parallel must be a positive integer')
try {
  if (!statSync(args.file).isFile()) fail(`not a file: ${args.file}`)
} catch (err) {
  fail(err.message)
}

// What the server has acknowledged, per upload URL (one, or one per partial
// upload), as read from the responses themselves: POST creates at 0 (or at
// the Upload-Offset of a creation-with-upload answer), HEAD and PATCH answer
// with Upload-Offset.
const acknowledged = new Map()
let started = false
const total = () => [...acknowledged.values()].reduce((a, b) => a + b, 0)

function onAfterResponse(req, res) {
  const status = res.getStatus()
  if (status < 200 || status > 299) return
  const method = req.getMethod()
  const offset = Number.parseInt(res.getHeader('Upload-Offset') ?? '', 10)
  if (method === 'POST') {
    if (String(req.getHeader('Upload-Concat') ?? '').startsWith('final')) return
    const location = res.getHeader('Location')
    if (location == null) return
    acknowledged.set(new URL(location, args.endpoint).toString(), Number.isNaN(offset) ? 0 : offset)
  } else if ((method === 'HEAD' || method === 'PATCH') && !Number.isNaN(offset)) {
    acknowledged.set(req.getURL(), offset)
  } else {
    return
  }
  if (!started && acknowledged.size === parallel) {
    started = true
    if (parallel === 1) {
      emit({ event: 'start', url: [...acknowledged.keys()][0], offset: total() })
    } else {
      emit({ event: 'start', url: null, parts: [...acknowledged.keys()], offset: total() })
    }
  }
}

const upload = new Upload(createReadStream(args.file), {
  endpoint: args.endpoint,
  chunkSize,
  parallelUploads: parallel,
  retryDelays: [0, 200, 500],
  metadata: { filename: basename(args.file), filetype: 'application/octet-stream' },
  storeFingerprintForResuming: true,
  removeFingerprintOnSuccess: false,
  urlStorage: new FileUrlStorage(args.store),
  onAfterResponse,
  onChunkComplete(_chunk, bytesAccepted) {
    emit({ event: 'chunk', offset: parallel === 1 ? bytesAccepted : total() })
  },
  onSuccess() {
    if (parallel === 1 && !started) {
      // Guard: a success must never come without its start line.
      emit({ event: 'start', url: upload.url, offset: 0 })
    }
    emit({ event: 'done', url: upload.url })
    process.exit(0)
  },
  onError(err) {
    fail(err?.stack ?? String(err))
  },
})

try {
  const previous = await upload.findPreviousUploads()
  if (previous.length > 0) {
    // The most recently stored one for this file.
    previous.sort((a, b) => Date.parse(a.creationTime) - Date.parse(b.creationTime))
    upload.resumeFromPreviousUpload(previous[previous.length - 1])
  }
  upload.start()
} catch (err) {
  fail(err?.stack ?? String(err))
}
