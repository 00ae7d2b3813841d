// The upload queue: every file the person added, what state it is in, and
// the scheduler that moves them along. Hashing runs a little ahead of
// uploading; a few files upload at once, sharing a few chunk slots.
//
// States: queued → hashing → queued (hashed) → checking → uploading →
// completing → done; any of them → paused, failed or cancelled; after a
// reload, needs-file until the file is selected again.

import * as api from './api.js';
import { hashFile } from './hash.js';
import * as store from './store.js';
import { Slots, upload } from './upload.js';

/** Files being hashed at once (they share the worker pool). */
const HASHING = 4;
/** Hashed files waiting for an upload slot: how far hashing runs ahead. */
const AHEAD = 16;
/** Files uploading at once: small files are mostly round trips, so
 * several go together; big ones share the chunk slots. */
const UPLOADING = 6;
/** Files taken in per task when many are added at once: reading a
 * File's size and date can cost the browser a file system call each. */
const BATCH = 100;
/** Chunk requests in flight, all files together. */
const CHUNK_SLOTS = 4;

const ACTIVE = new Set(['hashing', 'checking', 'uploading', 'completing']);
const UNFINISHED = new Set(['queued', 'paused', 'failed', 'needs-file', ...ACTIVE]);

/** Bytes per second over the last few seconds. */
export class Rate {
  constructor(window = 8000) {
    this.window = window;
    this.samples = [];
  }

  add(value, now = performance.now()) {
    this.samples.push([now, value]);
    while (this.samples.length > 2 && now - this.samples[1][0] > this.window) this.samples.shift();
  }

  reset() {
    this.samples = [];
  }

  get perSecond() {
    if (this.samples.length < 2) return 0;
    const [t0, v0] = this.samples[0];
    const [t1, v1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((v1 - v0) * 1000) / (t1 - t0) : 0;
  }
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

class Item {
  constructor(fields) {
    this.key = newKey();
    this.file = null;
    this.name = '';
    this.size = 0;
    this.lastModified = 0;
    this.type = '';
    this.state = 'queued';
    this.hashed = 0;
    this.hash = null;
    this.digests = null;
    this.uploadId = null;
    this.chunkSize = 0;
    this.chunkCount = 0;
    this.received = new Set();
    this.acked = 0;
    this.instant = false;
    this.fileId = null;
    this.error = null;
    this.retryAt = 0;
    this.controller = null;
    this.rate = new Rate();
    Object.assign(this, fields);
  }

  get finished() {
    return this.state === 'done' || this.state === 'cancelled';
  }

  record() {
    const { key, name, size, lastModified, type, hash, uploadId } = this;
    return { key, name, size, lastModified, type, hash, uploadId, saved: Date.now() };
  }
}

export class Queue extends EventTarget {
  constructor() {
    super();
    this.items = [];
    this.slots = new Slots(CHUNK_SLOTS);
    this.rate = new Rate();
  }

  /** Lets the views know; `finished` when a file reached the server. */
  changed(detail = {}) {
    this.dispatchEvent(new CustomEvent('change', { detail }));
  }

  find(key) {
    return this.items.find((i) => i.key === key);
  }

  /** Brings back the unfinished uploads of an earlier visit. */
  async restore() {
    const records = await store.all();
    records.sort((a, b) => a.saved - b.saved);
    for (const r of records) {
      const { saved, ...fields } = r;
      this.items.push(new Item({ ...fields, state: 'needs-file' }));
    }
    this.changed();
    return records.length;
  }

  get waitingForFiles() {
    return this.items.filter((i) => i.state === 'needs-file');
  }

  /**
   * Adds files (`{ file, name }` with the relative name). A file that is
   * one an earlier visit left unfinished (same name, size and date, else
   * same name and size) goes back into that item. Large selections are
   * taken in batches, so the page stays responsive.
   */
  async add(entries) {
    for (let at = 0; at < entries.length; at += BATCH) {
      if (at) await new Promise((resolve) => setTimeout(resolve));
      this.addBatch(entries.slice(at, at + BATCH));
    }
  }

  addBatch(entries) {
    const fresh = [];
    let pending = this.waitingForFiles;
    for (const { file, name } of entries) {
      const size = file.size;
      const match =
        pending.length &&
        (pending.find((i) => i.name === name && i.size === size && i.lastModified === file.lastModified) ||
          pending.find((i) => i.name === name && i.size === size));
      if (match) {
        this.attach(match, file);
        pending = this.waitingForFiles;
        continue;
      }
      const item = new Item({ file, name, size, lastModified: file.lastModified, type: file.type });
      this.items.push(item);
      fresh.push(item);
    }
    store.save(fresh.map((i) => i.record()));
    this.changed();
    this.pump();
  }

  /** Gives a waiting item its file back. False if it cannot be that file. */
  attach(item, file) {
    if (file.size !== item.size) return false;
    item.file = file;
    item.lastModified = file.lastModified;
    // The bytes are hashed again: the record's hash says what was being
    // uploaded, not what this file holds.
    item.digests = null;
    item.hashed = 0;
    item.state = 'queued';
    item.error = null;
    store.save([item.record()]);
    this.changed();
    this.pump();
    return true;
  }

  /** Starts whatever may start now. */
  pump() {
    let hashing = 0;
    let uploading = 0;
    let ahead = 0;
    for (const item of this.items) {
      if (item.state === 'hashing') hashing++;
      else if (ACTIVE.has(item.state)) uploading++;
      else if (item.state === 'queued' && item.digests) ahead++;
    }
    for (const item of this.items) {
      if (item.state !== 'queued' || !item.file) continue;
      if (item.digests) {
        if (uploading < UPLOADING) {
          uploading++;
          ahead--;
          this.run(item, 'upload');
        }
      } else if (hashing < HASHING && ahead < AHEAD) {
        hashing++;
        this.run(item, 'hash');
      }
      if (uploading >= UPLOADING && (hashing >= HASHING || ahead >= AHEAD)) break;
    }
  }

  async run(item, phase) {
    const controller = new AbortController();
    item.controller = controller;
    item.error = null;
    const ctx = {
      signal: controller.signal,
      slots: this.slots,
      changed: () => this.changed(),
      stateful: () => store.save([item.record()]),
      retry: {
        signal: controller.signal,
        onWait: (ms) => {
          item.retryAt = performance.now() + ms;
          this.changed();
        },
      },
    };
    try {
      if (phase === 'hash') {
        item.state = 'hashing';
        this.changed();
        const { hash, digests } = await hashFile(item.file, {
          signal: controller.signal,
          onProgress: (n) => {
            item.hashed = n;
            this.changed();
          },
        });
        if (controller.signal.aborted) return;
        if (item.hash && item.hash !== hash) {
          // Selected again but the content differs: a new upload.
          item.uploadId = null;
          item.received = new Set();
        }
        item.hash = hash;
        item.digests = digests;
        item.state = 'queued';
        store.save([item.record()]);
      } else {
        await this.send(item, ctx);
      }
    } catch (err) {
      if (err && err.name === 'AbortError') {
        // Cancelled while the server was answering: it may have made
        // something the cancel could not know of yet.
        if (item.state === 'cancelled') this.forget(item);
        return;
      }
      item.state = 'failed';
      item.error = err;
      console.warn(`tusk: ${item.name}:`, err);
    } finally {
      item.retryAt = 0;
      if (item.controller === controller) item.controller = null;
      this.changed();
      this.pump();
    }
  }

  async send(item, ctx) {
    try {
      await upload(item, ctx);
    } catch (err) {
      // An upload that expired or was removed on the server starts over.
      if (!(err instanceof api.ApiError) || err.code !== 'upload_gone' || ctx.restarted) throw err;
      item.uploadId = null;
      item.received = new Set();
      item.acked = 0;
      await upload(item, { ...ctx, restarted: true });
    }
    item.state = 'done';
    item.acked = item.size;
    item.digests = null;
    store.remove([item.key]);
    this.changed({ finished: item });
  }

  pause(item) {
    if (!UNFINISHED.has(item.state) || item.state === 'paused' || item.state === 'needs-file') return;
    // Hashing starts over on resume; sent chunks stay sent.
    if (!item.digests) item.hashed = 0;
    item.state = 'paused';
    if (item.controller) item.controller.abort();
    item.rate.reset();
    this.changed();
    this.pump();
  }

  resume(item) {
    if (item.state !== 'paused' && item.state !== 'failed') return;
    if (item.error && item.error.code === 'hash_mismatch') {
      // The upload was discarded by the server: hash the file again.
      item.digests = null;
      item.hash = null;
      item.uploadId = null;
    }
    item.state = item.file ? 'queued' : 'needs-file';
    item.error = null;
    this.changed();
    this.pump();
  }

  /** Stops an upload and deletes what the server received of it. */
  async cancel(item) {
    if (item.finished) return;
    item.state = 'cancelled';
    if (item.controller) item.controller.abort();
    item.digests = null;
    store.remove([item.key]);
    this.changed();
    this.pump();
    await this.forget(item);
  }

  /** Deletes what the server holds of a cancelled item (once). */
  async forget(item) {
    const { uploadId, fileId } = item;
    item.uploadId = null;
    item.fileId = null;
    try {
      if (uploadId) await api.deleteUpload(uploadId);
      if (fileId) await api.deleteFile(fileId);
    } catch (err) {
      console.warn(`tusk: the server kept the cancelled upload of ${item.name}:`, err);
    }
  }

  remove(item) {
    if (!item.finished && item.state !== 'failed') return;
    if (item.state === 'failed') this.cancel(item);
    this.items = this.items.filter((i) => i !== item);
    this.changed();
  }

  pauseAll() {
    for (const item of this.items) this.pause(item);
  }

  resumeAll() {
    for (const item of this.items) if (item.state === 'paused') this.resume(item);
  }

  cancelAll() {
    for (const item of this.items) this.cancel(item);
  }

  clearFinished() {
    this.items = this.items.filter((i) => !i.finished);
    this.changed();
  }

  /** What the total progress shows: from acknowledged bytes only. */
  totals() {
    let count = 0;
    let done = 0;
    let failed = 0;
    let size = 0;
    let acked = 0;
    let active = false;
    for (const i of this.items) {
      if (i.state === 'cancelled') continue;
      count++;
      size += i.size;
      acked += i.state === 'done' ? i.size : i.acked;
      if (i.state === 'done') done++;
      else if (i.state === 'failed' || i.state === 'needs-file') failed++;
      if (ACTIVE.has(i.state) || (i.state === 'queued' && i.file)) active = true;
    }
    return { count, done, failed, size, acked, active };
  }
}

