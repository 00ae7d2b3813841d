#!/usr/bin/env node
// @tus/server with @tus/file-store, as its README sets it up, for bench/run.
// Listens on 127.0.0.1 at a free port and prints one line once it does:
//   listening http://127.0.0.1:PORT/files/
// Usage: node tus-node-server.mjs DIRECTORY
// The file store writes with fs.createWriteStream and never fsyncs: a PATCH
// is acknowledged once its bytes are in the page cache.
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'

const directory = process.argv[2]
if (!directory) {
  process.stderr.write('usage: tus-node-server.mjs DIRECTORY\n')
  process.exit(2)
}
const server = new Server({ path: '/files', datastore: new FileStore({ directory }) })
const http = server.listen({ host: '127.0.0.1', port: 0 }, () => {
  process.stdout.write(`listening http://127.0.0.1:${http.address().port}/files/\n`)
})
