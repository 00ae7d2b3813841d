// A hashing worker: SHA-256 of one slice of a file, or of given bytes.
// Several run in parallel (see hash.js); each holds only the slices it is
// hashing at the moment.

import { sha256 } from './sha256.js';

const subtle = self.crypto && self.crypto.subtle;

// Block buffers are reused. A fresh ArrayBuffer per block leaves its
// memory to the garbage collector, which in a busy worker falls far behind:
// the tab grew by about 1 GiB while hashing a 20 GiB file that way.
const spare = [];
let byob = true;

// Readers in the middle of a read. A pending read() does not keep its
// reader alive: if the garbage collector takes the reader, the read never
// settles and the hash hangs. Holding them here prevents that.
const reading = new Set();

async function readSlice(file, start, end) {
  const len = end - start;
  if (byob) {
    let buffer = spare.pop();
    if (!buffer || buffer.byteLength < len) buffer = new ArrayBuffer(Math.max(len, 4 * 1024 * 1024));
    let reader;
    try {
      reader = file.slice(start, end).stream().getReader({ mode: 'byob' });
    } catch {
      // This browser's Blob streams do not take our buffers.
      byob = false;
      return { bytes: new Uint8Array(await file.slice(start, end).arrayBuffer()) };
    }
    reading.add(reader);
    try {
      return await fill(reader, buffer, len);
    } finally {
      reading.delete(reader);
    }
  }
  return { bytes: new Uint8Array(await file.slice(start, end).arrayBuffer()) };
}

async function fill(reader, buffer, len) {
  let filled = 0;
  for (;;) {
    // Read until the stream says it ended: a stream left open keeps its
    // pipe from the browser, and enough of those stall further reads.
    const room = filled < len ? len - filled : 1;
    const view = filled < len ? new Uint8Array(buffer, filled, room) : new Uint8Array(1);
    const { value, done } = await reader.read(view);
    if (done) break;
    if (filled >= len) throw new DOMException('the file changed', 'NotReadableError');
    buffer = value.buffer;
    filled += value.byteLength;
  }
  if (filled !== len) throw new DOMException('the file changed', 'NotReadableError');
  return { bytes: new Uint8Array(buffer, 0, len), buffer };
}

async function digest(bytes) {
  if (subtle) return new Uint8Array(await subtle.digest('SHA-256', bytes));
  return sha256(bytes);
}

self.onmessage = async (event) => {
  const { id, file, start, end, bytes } = event.data;
  try {
    let result;
    if (bytes) {
      result = await digest(new Uint8Array(bytes));
    } else {
      const read = await readSlice(file, start, end);
      try {
        result = await digest(read.bytes);
      } finally {
        if (read.buffer) spare.push(read.buffer);
      }
    }
    self.postMessage({ id, digest: result }, [result.buffer]);
  } catch (err) {
    self.postMessage({ id, error: (err && (err.name === 'NotReadableError' ? 'unreadable' : err.message)) || String(err) });
  }
};
