// The JSON API of the server (docs/api.md), and the retry rule for it.
// Every request carries this tab's token, if it has one (auth.js).

import * as auth from './auth.js';

/** A refusal or failure, with the server's stable error code. */
export class ApiError extends Error {
  constructor(status, code, message, detail = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  /** Network trouble, a server failure, or "try again": worth retrying. */
  get transient() {
    return this.status === 0 || this.status >= 500 && this.status !== 507 || [408, 423, 429].includes(this.status) || this.code === 'conflict';
  }
}

function isAbort(err) {
  return err && err.name === 'AbortError';
}

/**
 * One request to the API, with this tab's token. A 401 (no token, or one
 * the server refuses) is not a failure: the request waits until a token is
 * entered and is sent again with it. `signal` ends the wait too.
 */
async function call(method, path, { json, body, headers = {}, signal } = {}) {
  for (;;) {
    const sent = auth.currentGeneration();
    const init = { method, headers: { ...headers, ...auth.headers() }, signal };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['content-type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
      init.headers['content-type'] = 'application/octet-stream';
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(0, 'network', err.message || 'network error');
    }
    if (res.status === 401) {
      // The body is only the error envelope: let the connection go.
      res.body && res.body.cancel().catch(() => {});
      auth.refused(sent);
      await auth.newer(sent, signal);
      continue;
    }
    if (!res.ok) {
      let error = {};
      try {
        error = (await res.json()).error || {};
      } catch {
        // Not the JSON envelope (a proxy's page, say): the status tells.
      }
      const after = Number(res.headers.get('retry-after'));
      throw new ApiError(res.status, error.code || `http_${res.status}`, error.message || res.statusText, error, Number.isFinite(after) && after > 0 ? after : null);
    }
    if (res.status === 204) return { status: res.status, body: null };
    return { status: res.status, body: await res.json() };
  }
}

/**
 * Whether the server accepts `token`: 'ok', 'refused' (401) or an
 * ApiError for anything else (the server cannot be reached, say).
 */
export async function tryToken(token) {
  let res;
  try {
    res = await fetch('/api/v1/files?limit=1', { headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new ApiError(0, 'network', err.message || 'network error');
  }
  res.body && res.body.cancel().catch(() => {});
  if (res.status === 401) return 'refused';
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, res.statusText);
  return 'ok';
}

/**
 * Check by hash: `{ status: 'complete', file }` (instant upload) or
 * `{ status: 'uploading', upload, challenge }` (new or resumed; the
 * challenge, when there is one, may spare sending it: see `prove`).
 */
export async function check(claim, signal) {
  const { body } = await call('POST', '/api/v1/uploads', { json: claim, signal });
  return body;
}

export async function getUpload(id, signal) {
  return (await call('GET', `/api/v1/uploads/${id}`, { signal })).body.upload;
}

/** Sends chunk `index` (a Blob); resolves to the upload once it is durable. */
export async function putChunk(id, index, blob, headers, signal) {
  return (await call('PUT', `/api/v1/uploads/${id}/chunks/${index}`, { body: blob, headers, signal })).body.upload;
}

/**
 * Proof of possession: `digests` are SHA-256(nonce ‖ block), hex, for the
 * challenge's blocks in order. The answer is shaped like the check's:
 * `complete` with the file, or `uploading` (send the chunks).
 */
export async function prove(id, digests, signal) {
  return (await call('POST', `/api/v1/uploads/${id}/proof`, { json: { digests }, signal })).body;
}

export async function complete(id, signal) {
  return (await call('POST', `/api/v1/uploads/${id}/complete`, { signal })).body.file;
}

export async function deleteUpload(id) {
  try {
    await call('DELETE', `/api/v1/uploads/${id}`);
  } catch (err) {
    // Already gone is what deleting wants.
    if (!(err instanceof ApiError && (err.status === 404 || err.status === 410))) throw err;
  }
}

export async function listFiles({ q = '', cursor = null, limit = 100 } = {}) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (q) params.set('q', q);
  if (cursor) params.set('cursor', cursor);
  return (await call('GET', `/api/v1/files?${params}`)).body;
}

export async function deleteFile(id) {
  await call('DELETE', `/api/v1/files/${id}`);
}

// ---- retries ----

const FIRST_DELAY = 500;
const MAX_DELAY = 30_000;
const ATTEMPTS = 8;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(new DOMException('stopped', 'AbortError'));
    const timer = setTimeout(resolve, ms);
    signal && signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('stopped', 'AbortError'));
    }, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, retrying transient failures with
 * exponential backoff and full jitter (capped at 30 s, 8 attempts).
 * A refusal (4xx) is thrown at once. `onWait(ms)` hears of each wait.
 */
export async function retrying(attempt, { signal, onWait } = {}) {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (isAbort(err) || !(err instanceof ApiError) || !err.transient || n + 1 >= ATTEMPTS) throw err;
      const backoff = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** n);
      const wait = err.retryAfter ? err.retryAfter * 1000 : backoff / 2 + Math.random() * backoff / 2;
      if (onWait) onWait(wait);
      await sleep(wait, signal);
    }
  }
}
