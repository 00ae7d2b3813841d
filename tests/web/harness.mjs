// The harness of the browser tests (tests/web/*.test.mjs): it starts the
// real `tusk serve` on a loopback port with a fresh data folder, drives
// Debian's chromium through playwright-core, makes test files, speaks the
// JSON API with fetch, and leaves a screenshot (and a log) of every test in
// target/web-artifacts/.
//
// Every wait here is for a condition (a line on stdout, an element state, an
// API answer), bounded by a generous timeout so that a broken page fails the
// test instead of hanging it. Nothing sleeps to "let things settle", with one
// named exception: `observe()`, used only to assert that something does NOT
// happen during a window of time.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(REPO, 'target', 'web-artifacts');
export const MiB = 1024 * 1024;
export const BLOCK = 4 * MiB;

/** Generous bounds: 2 cores, a debug build of the server, a real browser. */
export const TIMEOUT = {
  start: 60_000, // server or browser start
  step: 60_000, // one UI step: a state change, an element appearing
  upload: 240_000, // a whole upload of tens of MiB, hashing included
};

export const CHROMIUM = process.env.TUSK_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// --- the server ------------------------------------------------------------

function serverBin() {
  const bin = process.env.TUSK_BIN
    ? path.resolve(REPO, process.env.TUSK_BIN)
    : path.join(REPO, 'target', 'debug', 'tusk');
  if (!fs.existsSync(bin)) {
    throw new Error(`the server binary ${bin} is missing: run \`cargo build\` first (or set TUSK_BIN)`);
  }
  return bin;
}

/**
 * Runs `tusk token <args…>` on the server data folder `dataDir` (before
 * the server starts, or beside it: it sees new and revoked tokens on its
 * next request) and returns its stdout, trimmed. The folder is given as
 * TUSK_DATA, which every form of the command reads.
 */
export function tokenCommand(dataDir, ...args) {
  return execFileSync(serverBin(), ['token', ...args], {
    env: { ...process.env, TUSK_DATA: dataDir },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: TIMEOUT.start,
  }).trim();
}

/** `tusk token create --name <name>`: the new token (`tusk_` + 64 hex). */
export function createToken(dataDir, name) {
  const token = tokenCommand(dataDir, 'create', '--name', name);
  assert.match(token, /^tusk_[0-9a-f]{64}$/, `the token printed for ${name}`);
  return token;
}

/**
 * Starts `tusk serve --listen 127.0.0.1:0 --data <fresh temp dir>` and
 * resolves once it printed the address it listens on. `tokens` names
 * owners to create a token for first (the server then needs one): they are
 * in the result's `tokens`, by name.
 */
export async function startServer({ tokens: owners = [] } = {}) {
  const bin = serverBin();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tusk-web-data-'));
  const tokens = {};
  for (const name of owners) tokens[name] = createToken(dataDir, name);
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  const log = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => log.push(s));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`tusk did not print its address within ${TIMEOUT.start} ms; stderr:\n${log.join('')}`));
    }, TIMEOUT.start);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`tusk exited (code ${code}, signal ${signal}) before listening; stderr:\n${log.join('')}`));
    });
  });

  let stopped = false;
  return {
    url,
    dataDir,
    tokens,
    log,
    /** Stops the server (SIGTERM, SIGKILL after 10 s) and removes its data folder. */
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// --- the JSON API ----------------------------------------------------------

/**
 * A small client of the JSON API of the server at `base`, sending `token`
 * (if given) as `Authorization: Bearer …`. Downloads send no token: they
 * use the file's `url`, a signed link where the server has tokens.
 */
export function api(base, token = null) {
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  async function json(method, p, payload) {
    const init = { method, headers: { ...auth } };
    if (payload !== undefined) {
      init.body = JSON.stringify(payload);
      init.headers['content-type'] = 'application/json';
    }
    const res = await fetch(base + p, init);
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    return { status: res.status, body };
  }
  return {
    json,
    /** Every file of the owner (all pages), newest first. */
    async files() {
      const all = [];
      let cursor = '';
      for (;;) {
        const { status, body } = await json('GET', `/api/v1/files?limit=1000&cursor=${encodeURIComponent(cursor)}`);
        assert.equal(status, 200, `GET /api/v1/files: ${JSON.stringify(body)}`);
        all.push(...body.files);
        if (body.next_cursor == null) return all;
        cursor = body.next_cursor;
      }
    },
    /** `GET /api/v1/uploads/{id}`: `{status, body}`, whatever the status. */
    upload(id) {
      return json('GET', `/api/v1/uploads/${id}`);
    },
    /** The bytes behind a file's `url`. */
    async download(url) {
      const res = await fetch(base + url);
      assert.equal(res.status, 200, `GET ${url}`);
      return Buffer.from(await res.arrayBuffer());
    },
    /**
     * Uploads `buf` as `name` (with media type `mime`, if given) the way a
     * JSON API client does: the check,
     * every chunk (of the upload's chunk_size) unless the check answered
     * an instant upload, then complete. Returns the file record.
     */
    async uploadBytes(name, buf, mime = null) {
      const claim = { name, size: buf.length, hash: sha256_4m(buf) };
      if (mime) claim.mime = mime;
      const check = await json('POST', '/api/v1/uploads', claim);
      assert.ok(check.status === 200 || check.status === 201, `the check of ${name}: ${check.status} ${JSON.stringify(check.body)}`);
      if (check.body.status === 'complete') return check.body.file;
      const { id, chunk_size: size, chunk_count: count } = check.body.upload;
      for (let i = 0; i < count; i++) {
        const res = await fetch(`${base}/api/v1/uploads/${id}/chunks/${i}`, {
          method: 'PUT',
          headers: { ...auth, 'content-type': 'application/octet-stream' },
          body: buf.subarray(i * size, Math.min(buf.length, (i + 1) * size)),
        });
        const text = await res.text();
        assert.equal(res.status, 200, `PUT chunk ${i} of ${name}: ${text}`);
      }
      const done = await json('POST', `/api/v1/uploads/${id}/complete`);
      assert.equal(done.status, 200, `complete ${name}: ${JSON.stringify(done.body)}`);
      return done.body.file;
    },
  };
}

// --- waiting -----------------------------------------------------------------

/**
 * Calls `fn` until `done(value)` holds (like playwright's expect.poll) and
 * returns that value; fails with `message` and the last value after
 * `timeout` ms.
 */
export async function poll(fn, done, { timeout = TIMEOUT.step, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (done(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}; last value: ${JSON.stringify(last)?.slice(0, 2000)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Watches for `ms` milliseconds. Used only to assert that something does not
 * happen (no request while paused); never to wait for something to be ready.
 */
export function observe(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// --- files -------------------------------------------------------------------

/** A fresh temp folder for test files, removed by `cleanup()`. */
export function tempDir(prefix = 'tusk-web-files-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes `size` random bytes to `dir/rel` (folders made as needed); returns its path. */
export function makeFile(dir, rel, size) {
  const p = path.join(dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  const fd = fs.openSync(p, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, MiB);
      fs.writeSync(fd, randomBytes(n));
      left -= n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return p;
}

/** The `sha256-4m` hash of a buffer: SHA-256 over the SHA-256 digests of its 4 MiB blocks. */
export function sha256_4m(buf) {
  const outer = createHash('sha256');
  for (let off = 0; off < buf.length; off += BLOCK) {
    outer.update(createHash('sha256').update(buf.subarray(off, off + BLOCK)).digest());
  }
  return 'sha256-4m:' + outer.digest('hex');
}

/** The `sha256-4m` hash of a file on disk. */
export function sha256_4mFile(p) {
  return sha256_4m(fs.readFileSync(p));
}

/** Regular files under `dir`, as a Map of relative path → size. */
export function listFiles(dir) {
  const out = new Map();
  for (const ent of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!ent.isFile()) continue;
    const full = path.join(ent.parentPath ?? ent.path, ent.name);
    try {
      out.set(path.relative(dir, full), fs.statSync(full).size);
    } catch {
      // removed between readdir and stat
    }
  }
  return out;
}

// --- the browser -------------------------------------------------------------

/**
 * One test's world: a server, a browser, a context and a page on the
 * server's `/`, all torn down after the test, with a screenshot and a log in
 * target/web-artifacts/<test name>.{png,log}.
 *
 * `options.locale` sets the browser context's locale (default `en-US`);
 * `options.tokens` names owners to create tokens for before the server
 * starts (see `startServer`): `s.tokens` has them, and `s.api` then acts
 * for the first of them (`s.apiAs(name)` for the others).
 */
export async function session(t, { locale = 'en-US', tokens = [] } = {}) {
  const s = {
    server: null,
    browser: null,
    context: null,
    page: null,
    api: null,
    files: tempDir(),
    log: [],
    /** Every chunk PUT the page started, in order: `{id, index, at, digest}` (`digest`: its Content-Digest header). */
    chunkPuts: [],
  };
  t.after(async () => {
    const name = safeName(t.fullName ?? t.name);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    if (s.page && !s.page.isClosed()) {
      try {
        await s.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true, timeout: 30_000 });
      } catch (e) {
        s.log.push(`screenshot failed: ${e.message}`);
      }
    }
    if (s.browser) await s.browser.close().catch(() => {});
    if (s.server) {
      s.log.push('--- server stderr ---', s.server.log.join(''));
      await s.server.stop();
    }
    fs.rmSync(s.files, { recursive: true, force: true });
    fs.writeFileSync(path.join(ARTIFACTS, `${name}.log`), s.log.join('\n') + '\n');
  });

  s.server = await startServer({ tokens });
  s.tokens = s.server.tokens;
  s.apiAs = (name) => api(s.server.url, s.tokens[name]);
  s.api = api(s.server.url, tokens.length ? s.tokens[tokens[0]] : null);
  s.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: TIMEOUT.start });
  // Reduced motion: no bar is caught mid-transition in a screenshot.
  s.context = await s.browser.newContext({ locale, viewport: { width: 1280, height: 1000 }, reducedMotion: 'reduce' });
  s.context.setDefaultTimeout(TIMEOUT.step);
  s.page = await s.context.newPage();
  const page = s.page;
  page.on('console', (m) => s.log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => s.log.push(`pageerror: ${e.stack || e.message}`));
  page.on('requestfailed', (r) => s.log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) s.log.push(`response ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on('request', (r) => {
    const m = CHUNK_URL.exec(r.url());
    if (m && r.method() === 'PUT') {
      s.chunkPuts.push({ id: m[1], index: Number(m[2]), at: Date.now(), digest: r.headers()['content-digest'] });
    }
  });
  s.pageErrors = [];
  page.on('pageerror', (e) => s.pageErrors.push(e.message));
  // goto resolves on the load event, which follows the page's (deferred)
  // module scripts; tests wait on their own conditions from here on.
  await page.goto(s.server.url + '/');
  await page.locator('#choose-files').waitFor({ state: 'visible' });
  return s;
}

/** `PUT /api/v1/uploads/{id}/chunks/{index}` */
export const CHUNK_URL = /\/api\/v1\/uploads\/([0-9a-f]{32})\/chunks\/(\d+)(?:\?.*)?$/;

function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 150) || 'test';
}

/**
 * Holds chunk PUTs at the network layer: the first `pass` go through, every
 * later one waits until `release()` (or forever). Held requests never reach
 * the server.
 */
export async function gateChunks(page, { pass }) {
  const held = [];
  let open = false;
  let passed = 0;
  const handler = async (route) => {
    if (open || passed < pass) {
      passed += 1;
      await route.continue().catch(() => {});
    } else {
      held.push(route);
    }
  };
  await page.route(CHUNK_URL, handler);
  return {
    held,
    get passed() {
      return passed;
    },
    /** Lets every held and every later chunk through. */
    async release() {
      open = true;
      for (const r of held) await r.continue().catch(() => {});
    },
    /** Lets every later chunk through; the held ones stay held (until the page drops them). */
    passAll() {
      open = true;
    },
    /**
     * Waits until every held request got its answer or failed (aborted by
     * the page, or by a navigation); after `release()`.
     */
    async settled(timeout = TIMEOUT.step) {
      const all = Promise.all(held.map((r) => r.request().response().catch(() => null)));
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`held chunk requests did not settle within ${timeout} ms`)), timeout);
      });
      try {
        await Promise.race([all, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Drops files and folders of the local disk on the element `selector` the
 * way a user's drag from a file manager does: through Chromium's own drag
 * and drop (CDP `Input.dispatchDragEvent`), so the page's real dragenter,
 * dragover and drop handlers run and `DataTransferItem.webkitGetAsEntry()`
 * gives real FileSystemDirectoryEntry objects for folders.
 */
export async function dropPaths(page, selector, paths) {
  const target = page.locator(selector);
  await target.scrollIntoViewIfNeeded();
  const box = await target.boundingBox();
  assert.ok(box, `${selector} is on screen`);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const cdp = await page.context().newCDPSession(page);
  try {
    const data = { items: [], files: paths.map((p) => path.resolve(p)), dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop']) {
      await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
    }
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/** Saves a screenshot of the page now as target/web-artifacts/<test name>-<suffix>.png. */
export async function screenshot(t, page, suffix) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${safeName(t.fullName ?? t.name)}-${suffix}.png`), fullPage: true });
}

// --- the queue -------------------------------------------------------------------

/** CSS attribute-value quoting. */
export function q(value) {
  return '"' + String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** The queue row of the file named `name`. */
export function row(page, name) {
  return page.locator(`#queue .item[data-name=${q(name)}]`);
}

/**
 * Waits until the row named `name` is in one of `want` states, failing early
 * if it lands in one of `failOn` instead; returns the state.
 */
export async function waitForState(page, name, want, { timeout = TIMEOUT.step, failOn = ['failed', 'cancelled'] } = {}) {
  want = [].concat(want);
  const stop = failOn.filter((s) => !want.includes(s));
  let handle;
  try {
    handle = await page.waitForFunction(
      ({ name, want, stop }) => {
        const el = [...document.querySelectorAll('#queue .item')].find((e) => e.dataset.name === name);
        if (!el) return false;
        const st = el.dataset.state;
        return want.includes(st) || stop.includes(st) ? st : false;
      },
      { name, want, stop },
      { timeout, polling: 50 },
    );
  } catch (e) {
    const now = await rowState(page, name);
    throw new Error(`row ${JSON.stringify(name)} did not reach ${want.join('|')} within ${timeout} ms (now: ${now}): ${e.message.split('\n')[0]}`);
  }
  const state = await handle.jsonValue();
  if (!want.includes(state)) {
    const text = await row(page, name).innerText().catch(() => '');
    throw new Error(`row ${JSON.stringify(name)} went to ${state} instead of ${want.join('|')}: ${JSON.stringify(text)}`);
  }
  return state;
}

/** The row's data-state, or `(no row)`. */
export async function rowState(page, name) {
  return page.evaluate((name) => {
    const el = [...document.querySelectorAll('#queue .item')].find((e) => e.dataset.name === name);
    return el ? el.dataset.state : '(no row)';
  }, name);
}

/** Waits for the row's upload id (`data-upload-id`) and returns it. */
export async function uploadId(page, name, timeout = TIMEOUT.upload) {
  const el = page.locator(`#queue .item[data-name=${q(name)}][data-upload-id]`);
  await el.waitFor({ state: 'attached', timeout });
  const id = await el.getAttribute('data-upload-id');
  assert.match(id, /^[0-9a-f]{32}$/, `data-upload-id of ${name}`);
  return id;
}

/** Waits until the server holds at least `n` chunks of upload `id`; returns its upload record. */
export async function waitReceived(s, id, n, timeout = TIMEOUT.upload) {
  const { body } = await poll(
    () => s.api.upload(id),
    (r) => r.status === 200 && r.body.upload.received.length >= n,
    { timeout, message: `upload ${id} to have ${n} chunks on the server` },
  );
  return body.upload;
}

/** Asserts that the file named `name` is on the server with the bytes of `localPath`; returns it. */
export async function assertStored(s, name, localPath) {
  const files = await s.api.files();
  const matches = files.filter((f) => f.name === name);
  assert.equal(matches.length, 1, `exactly one file named ${name} in ${JSON.stringify(files.map((f) => f.name))}`);
  const [file] = matches;
  const want = fs.readFileSync(localPath);
  assert.equal(file.size, want.length, `size of ${name}`);
  assert.equal(file.hash, sha256_4m(want), `hash of ${name}`);
  const got = await s.api.download(file.url);
  assert.ok(got.equals(want), `the downloaded bytes of ${name} equal the original (${got.length} vs ${want.length} bytes)`);
  return file;
}
