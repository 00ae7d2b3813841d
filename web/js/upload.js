// One file's way to the server, after it is hashed: check, send the missing
// chunks (several at once, each retried on its own), complete.

import * as api from './api.js';
import { BLOCK, PREFIX, combine, digestRange, hex } from './hash.js';

/** The chunk size the page asks for: one 4 MiB block per chunk, so each
 * chunk's Content-Digest is a block digest the page already holds. */
export const CHUNK_SIZE = BLOCK;

/** Chunk requests in flight per file. */
export const PARALLEL = 4;

function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function chunkRange(item, index) {
  const start = index * item.chunkSize;
  return [start, Math.min(item.size, start + item.chunkSize)];
}

/** The bytes covered by the chunks the server holds. */
export function ackedBytes(item) {
  let n = 0;
  for (const i of item.received) {
    const [start, end] = chunkRange(item, i);
    n += end - start;
  }
  return n;
}

/** Takes what the server says about the upload; received never shrinks
 * while the upload is the same one. */
function adopt(item, upload) {
  if (item.uploadId !== upload.id) item.received = new Set();
  item.uploadId = upload.id;
  item.chunkSize = upload.chunk_size;
  item.chunkCount = upload.chunk_count;
  for (const i of upload.received) item.received.add(i);
  item.acked = ackedBytes(item);
}

/** Integrity headers for one chunk: RFC 9530 Content-Digest and the
 * chunk's own sha256-4m hash, both from the block digests where they can. */
async function integrity(item, index) {
  const [start, end] = chunkRange(item, index);
  const first = start / BLOCK;
  const blocks = item.digests.slice(first, Math.ceil(end / BLOCK));
  const digest = blocks.length === 1 ? blocks[0] : await digestRange(item.file, start, end);
  return {
    'content-digest': `sha-256=:${base64(digest)}:`,
    'chunk-hash': PREFIX + hex(await combine(blocks)),
  };
}

/** The upload as the server has it, if it is still this file's. */
async function known(item, ctx) {
  try {
    const upload = await api.retrying(() => api.getUpload(item.uploadId, ctx.signal), ctx.retry);
    if (upload.hash === item.hash && upload.size === item.size) return upload;
  } catch (err) {
    if (!(err instanceof api.ApiError) || err.transient) throw err;
  }
  item.uploadId = null;
  item.received = new Set();
  return null;
}

/**
 * Uploads `item` (hashed, with its File). `ctx` carries the abort signal,
 * the shared chunk slots, and the callbacks: `changed()` after each step,
 * `stateful()` when the upload id is known, `retry` for waits.
 */
export async function upload(item, ctx) {
  // Paused just as the server recorded the file: it is done.
  if (item.fileId) return;
  let upload = item.uploadId ? await known(item, ctx) : null;
  if (upload && upload.file_id) {
    item.fileId = upload.file_id;
    return;
  }
  if (upload) {
    adopt(item, upload);
    ctx.stateful();
  } else {
    item.state = 'checking';
    ctx.changed();
    const claim = { name: item.name, size: item.size, hash: item.hash, chunk_size: CHUNK_SIZE };
    if (item.type) claim.mime = item.type;
    // The check itself is not aborted: once sent, the server may create an
    // upload, and a cancelled item must learn its id to delete it.
    const answer = await api.retrying(() => api.check(claim), ctx.retry);
    if (answer.status === 'complete') {
      item.instant = true;
      item.fileId = answer.file.id;
    } else {
      upload = answer.upload;
      adopt(item, upload);
      ctx.stateful();
      if (worthProving(item, upload, answer.challenge) && !ctx.signal.aborted) {
        const file = await proveHolding(item, upload, answer.challenge, ctx);
        if (file) {
          item.instant = true;
          item.fileId = file.id;
        }
      }
    }
  }
  if (ctx.signal.aborted) throw new DOMException('stopped', 'AbortError');
  if (item.fileId) return;
  for (let round = 0; ; round++) {
    item.state = 'uploading';
    ctx.changed();
    await sendMissing(item, ctx);
    item.state = 'completing';
    ctx.changed();
    try {
      // Not aborted either: a cancel must learn of a file it came too late
      // to prevent, to delete it.
      const file = await api.retrying(() => api.complete(item.uploadId), ctx.retry);
      item.fileId = file.id;
      if (ctx.signal.aborted) throw new DOMException('stopped', 'AbortError');
      return;
    } catch (err) {
      // The server lost chunks it had acknowledged (it was restored from
      // an older backup, say): send them again, once or twice.
      if (!(err instanceof api.ApiError) || err.code !== 'missing_chunks' || round >= 2) throw err;
      for (const i of err.detail.missing || []) item.received.delete(i);
      item.acked = ackedBytes(item);
    }
  }
}

// ---- proof of possession ----

/** Files larger than this are worth a proof: the server answers a proof
 * after a fixed 400 ms, which sending four chunks would take anyway. */
export const PROOF_MIN_SIZE = 16 * 1024 * 1024;

/** Whether to answer the challenge: only before any chunk was sent, for a
 * file large enough, where WebCrypto is available (secure contexts). */
function worthProving(item, upload, challenge) {
  return !!(challenge && Array.isArray(challenge.blocks) && challenge.blocks.length && /^[0-9a-f]{32}$/i.test(challenge.nonce)) &&
    upload.received.length === 0 &&
    item.size > PROOF_MIN_SIZE &&
    !!(globalThis.crypto && crypto.subtle);
}

function fromHex(text) {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** SHA-256(nonce ‖ block i), hex, for each block the challenge names:
 * only those blocks are read. */
export async function proofDigests(file, challenge) {
  const nonce = fromHex(challenge.nonce);
  const digests = [];
  for (const index of challenge.blocks) {
    const start = index * BLOCK;
    const end = Math.min(file.size, start + BLOCK);
    const block = new Uint8Array(await file.slice(start, end).arrayBuffer());
    const message = new Uint8Array(nonce.length + block.length);
    message.set(nonce);
    message.set(block, nonce.length);
    digests.push(hex(new Uint8Array(await crypto.subtle.digest('SHA-256', message))));
  }
  return digests;
}

/**
 * Proves holding the bytes of `item` to skip sending them when the server
 * has the same content (of another owner). Resolves to the file when the
 * proof held, or null: then the chunks are sent as usual (also when the
 * proof could not be made or sent: it only ever saves time).
 */
async function proveHolding(item, upload, challenge, ctx) {
  let answer;
  try {
    const digests = await proofDigests(item.file, challenge);
    if (ctx.signal.aborted) return null;
    // Not aborted, like the check: a proof that held recorded a file,
    // which a cancel must learn of to delete it.
    answer = await api.retrying(() => api.prove(upload.id, digests), ctx.retry);
  } catch (err) {
    // A vanished upload starts over (queue.js); anything else: upload.
    if (err instanceof api.ApiError && err.code === 'upload_gone') throw err;
    if (err && err.name === 'AbortError') throw err;
    console.warn(`tusk: ${item.name}: no proof of possession:`, err);
    return null;
  }
  if (answer.status === 'complete') return answer.file;
  if (answer.upload) adopt(item, answer.upload);
  return null;
}

async function sendMissing(item, ctx) {
  const missing = [];
  for (let i = 0; i < item.chunkCount; i++) if (!item.received.has(i)) missing.push(i);
  // A failure stops this file's other lanes too.
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  let next = 0;
  const lane = async () => {
    while (next < missing.length) {
      const index = missing[next++];
      await ctx.slots.acquire(signal);
      try {
        const headers = await integrity(item, index);
        const [start, end] = chunkRange(item, index);
        const blob = item.file.slice(start, end);
        const upload = await api.retrying(() => api.putChunk(item.uploadId, index, blob, headers, signal), { ...ctx.retry, signal });
        for (const i of upload.received) item.received.add(i);
        item.acked = ackedBytes(item);
        ctx.changed();
      } finally {
        ctx.slots.release();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, missing.length) }, lane));
  } catch (err) {
    stop.abort();
    throw err;
  }
}

/** A counting semaphore whose waits can be aborted. */
export class Slots {
  constructor(size) {
    this.free = size;
    this.waiting = [];
  }

  acquire(signal) {
    if (signal.aborted) return Promise.reject(new DOMException('stopped', 'AbortError'));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve };
      this.waiting.push(waiter);
      signal.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(new DOMException('stopped', 'AbortError'));
        }
      }, { once: true });
    });
  }

  release() {
    const next = this.waiting.shift();
    if (next) next.resolve();
    else this.free++;
  }
}
