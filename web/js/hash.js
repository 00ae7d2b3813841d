// Content identity in the browser: the `sha256-4m` hash, that is SHA-256
// over the SHA-256 digests of consecutive 4 MiB blocks.
//
// Blocks are hashed in a pool of Web Workers, with WebCrypto where the
// page is a secure context. Only a few blocks are read at any moment (two
// per worker), so a file of any size hashes in a few tens of MiB.

export const BLOCK = 4 * 1024 * 1024;
export const PREFIX = 'sha256-4m:';

/** Blocks each worker may hold at once. */
const DEPTH = 2;

/** Tasks a worker runs before it is replaced. A Blob stream's resources
 * in the browser are released only when the stream object is garbage
 * collected, and a worker that allocates nothing is rarely collected:
 * after a few thousand reads the browser stops serving new ones. Ending
 * the worker releases everything at once; starting one costs
 * milliseconds, against seconds for 128 blocks. */
const RECYCLE = 128;

/** A block that takes longer than this is read again by a new worker: a
 * browser's read that never settles must not hang an upload forever. */
const STALL_MS = 60_000;
const STALL_RETRIES = 2;

class Pool {
  constructor(size) {
    this.workers = [];
    this.waiting = [];
    this.tasks = new Map();
    this.nextId = 1;
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  spawn() {
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module' });
    const slot = { worker, busy: 0, served: 0 };
    worker.onmessage = (event) => this.settle(slot, event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      this.failAll(new Error(event.message || 'the hashing worker failed'));
    };
    return slot;
  }

  get capacity() {
    return this.workers.length * DEPTH;
  }

  /** Digest of `file`'s bytes [start, end), or of `bytes` (an ArrayBuffer). */
  run(message) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.tasks.set(id, { resolve, reject, message: { ...message, id }, slot: null, timer: 0, stalls: 0 });
      this.waiting.push(id);
      this.dispatch();
    });
  }

  dispatch() {
    while (this.waiting.length) {
      const open = this.workers.filter((w) => w.served < RECYCLE && w.busy < DEPTH);
      if (!open.length) return;
      const slot = open.reduce((a, b) => (b.busy < a.busy ? b : a));
      const id = this.waiting.shift();
      const task = this.tasks.get(id);
      task.slot = slot;
      slot.busy++;
      slot.served++;
      task.timer = setTimeout(() => this.stalled(slot), STALL_MS);
      // Bytes are copied, not transferred: a stalled task is sent again.
      slot.worker.postMessage(task.message);
    }
  }

  /** A worker's task did not finish in time: replace the worker and give
   * its tasks to others (a few times, then fail them). */
  stalled(slot) {
    const i = this.workers.indexOf(slot);
    if (i < 0) return;
    slot.worker.terminate();
    this.workers[i] = this.spawn();
    const again = [];
    for (const [id, task] of this.tasks) {
      if (task.slot !== slot) continue;
      clearTimeout(task.timer);
      task.slot = null;
      if (++task.stalls > STALL_RETRIES) {
        this.tasks.delete(id);
        task.reject(new HashError('the browser stopped reading the file'));
      } else {
        again.push(id);
      }
    }
    this.waiting.unshift(...again);
    this.dispatch();
  }

  settle(slot, { id, digest, error }) {
    const task = this.tasks.get(id);
    if (task) clearTimeout(task.timer);
    slot.busy--;
    if (slot.served >= RECYCLE && slot.busy === 0) {
      slot.worker.terminate();
      this.workers[this.workers.indexOf(slot)] = this.spawn();
    }
    if (task) {
      this.tasks.delete(id);
      if (error) task.reject(new HashError(error));
      else task.resolve(digest);
    }
    this.dispatch();
  }

  failAll(err) {
    for (const task of this.tasks.values()) {
      clearTimeout(task.timer);
      task.reject(err);
    }
    this.tasks.clear();
    this.waiting = [];
    for (const slot of this.workers) slot.busy = 0;
  }
}

/** A file could not be read (moved, changed, or permission withdrawn). */
export class HashError extends Error {
  constructor(message) {
    super(message);
    this.code = message === 'unreadable' ? 'file_unreadable' : 'hash_failed';
  }
}

let pool = null;

function thePool() {
  if (!pool) {
    const cores = navigator.hardwareConcurrency || 2;
    pool = new Pool(Math.max(2, Math.min(4, cores)));
  }
  return pool;
}

export function hex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function aborted(signal) {
  return signal && signal.aborted;
}

function abortError() {
  return new DOMException('stopped', 'AbortError');
}

/**
 * Hashes `file`. Reports the bytes hashed so far through `onProgress`
 * (in order of completion, so it only grows). Resolves to the hash and
 * the block digests (one Uint8Array of 32 per block).
 */
export function hashFile(file, { onProgress, signal } = {}) {
  const p = thePool();
  const count = Math.ceil(file.size / BLOCK);
  const digests = new Array(count);
  return new Promise((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    let hashed = 0;
    let failed = false;
    const fail = (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    };
    const finish = async () => {
      try {
        const outer = await combine(digests);
        resolve({ hash: PREFIX + hex(outer), digests });
      } catch (err) {
        fail(err);
      }
    };
    const launch = () => {
      if (failed) return;
      if (aborted(signal)) return fail(abortError());
      while (inFlight < p.capacity && next < count) {
        const i = next++;
        const start = i * BLOCK;
        const end = Math.min(file.size, start + BLOCK);
        inFlight++;
        p.run({ file, start, end }).then((digest) => {
          inFlight--;
          digests[i] = digest;
          hashed += end - start;
          if (onProgress && !failed) onProgress(hashed);
          if (hashed === file.size && next === count && inFlight === 0) finish();
          else launch();
        }, fail);
      }
    };
    if (count === 0) finish();
    else launch();
  });
}

/** SHA-256 over the given 32-byte digests, one after the other. */
export function combine(digests) {
  const all = new Uint8Array(digests.length * 32);
  digests.forEach((d, i) => all.set(d, i * 32));
  return thePool().run({ bytes: all.buffer });
}

/** The SHA-256 of `file`'s bytes [start, end), read in a worker. */
export function digestRange(file, start, end) {
  return thePool().run({ file, start, end });
}
