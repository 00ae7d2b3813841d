#!/usr/bin/env node
// Uploads one file with tus-js-client (Node build) in chunks of a given size
// and prints the seconds from start() to onSuccess, for bench/run.
// Usage: node tusjs-upload.mjs ENDPOINT FILE CHUNK_BYTES
import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'
import { Upload } from 'tus-js-client'

const [endpoint, file, chunk] = process.argv.slice(2)
if (!endpoint || !file || !chunk) {
  process.stderr.write('usage: tusjs-upload.mjs ENDPOINT FILE CHUNK_BYTES\n')
  process.exit(2)
}
const start = process.hrtime.bigint()
const upload = new Upload(createReadStream(file), {
  endpoint,
  chunkSize: Number(chunk),
  uploadSize: statSync(file).size,
  metadata: { filename: basename(file) },
  retryDelays: null,
  onError(err) {
    process.stderr.write(`tusjs-upload: ${err}\n`)
    process.exit(1)
  },
  onSuccess() {
    process.stdout.write(`${Number(process.hrtime.bigint() - start) / 1e9}\n`)
  },
})
upload.start()
