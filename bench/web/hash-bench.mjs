// The page's hashing throughput in headless Chromium, beside spark-md5 hashing
// the same file in the same page; then the tab's memory while the page hashes
// a very large (sparse) file. Driven by bench/web-hash, which starts the
// server and makes the files; run it by hand as
//
//   node bench/web/hash-bench.mjs --url http://127.0.0.1:PORT --file F [--mem-file G]
//        [--runs 5] [--results bench/results/DATE-web-hash.md] [--command TEXT]
//
// and, for experiments: --module /path/of/another/hash.js (any module with the
// same hashFile, served by the same origin), --only page,spark,… (contenders),
// --runs 0 (memory only), --stall SECONDS, --chromium-arg=--flag.
//
// Every hash is checked against one computed here in node: a benchmark that
// computes the wrong thing exits non-zero. So does a page whose hashFile stops
// making progress (--stall, 60 s), after reporting what it measured.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const BLOCK = 4 * 1024 * 1024;
const MiB = 1024 * 1024;

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    file: { type: 'string' },
    'mem-file': { type: 'string' },
    runs: { type: 'string', default: '5' },
    results: { type: 'string' },
    command: { type: 'string', default: 'bench/web-hash' },
    page: { type: 'string' }, // which page this is (bench/web-hash: web/'s last commit)
    module: { type: 'string', default: '/web/js/hash.js' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    'sample-ms': { type: 'string', default: '200' },
    timeout: { type: 'string', default: '300' }, // seconds, for any one throughput run
    'chromium-arg': { type: 'string', multiple: true, default: [] }, // more flags, for experiments
    stall: { type: 'string', default: '60' }, // seconds without progress that fail a run of the page's hashFile
    only: { type: 'string' }, // comma-separated contenders to run (page,spark,subtle,read,read4,digest), for experiments
  },
});
if (!opt.url || !opt.file) {
  console.error('usage: hash-bench.mjs --url URL --file FILE [--mem-file FILE] [--runs N] [--results FILE.md]');
  process.exit(2);
}
const runs = Number(opt.runs);
const sampleMs = Number(opt['sample-ms']);
const timeoutMs = Number(opt.timeout) * 1000;

const log = (...a) => console.error(...a);
const fail = (msg) => { const e = new Error(msg); e.benchFailure = true; throw e; };
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 2) => x.toFixed(d);
const mib = (bytes) => (bytes / MiB).toFixed(1);
const withTimeout = (p, ms, what) => {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(t));
};

// ---------------------------------------------------------------- reference

// sha256-4m, the per-block digests and md5 of a file, computed independently.
function referenceHashes(file) {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.allocUnsafe(BLOCK);
  const md5 = crypto.createHash('md5');
  const digests = [];
  try {
    for (let off = 0; off < size || digests.length === 0; off += BLOCK) {
      const want = Math.min(BLOCK, size - off);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, off + got);
        if (n === 0) fail(`${file}: short read at ${off + got}`);
        got += n;
      }
      const block = buf.subarray(0, want);
      md5.update(block);
      digests.push(crypto.createHash('sha256').update(block).digest());
      if (want === 0) break;
    }
  } finally { fs.closeSync(fd); }
  return {
    size,
    digests: digests.map((d) => d.toString('hex')),
    sha256_4m: 'sha256-4m:' + crypto.createHash('sha256').update(Buffer.concat(digests)).digest('hex'),
    md5: md5.digest('hex'),
  };
}

// sha256-4m of `size` zero bytes (what a sparse file made with truncate holds),
// without reading the file.
function zeroHash(size) {
  const full = crypto.createHash('sha256').update(Buffer.alloc(BLOCK)).digest();
  const n = Math.floor(size / BLOCK), rest = size % BLOCK;
  const parts = Array(n).fill(full);
  if (rest || n === 0) parts.push(crypto.createHash('sha256').update(Buffer.alloc(rest)).digest());
  return {
    size,
    digests: parts.map((d) => d.toString('hex')),
    sha256_4m: 'sha256-4m:' + crypto.createHash('sha256').update(Buffer.concat(parts)).digest('hex'),
  };
}

// ---------------------------------------------------------------- processes

// Chromium's processes: every descendant of this node process.
function chromiumProcesses() {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
    } catch { /* gone */ }
  }
  const out = [];
  for (const pid of parent.keys()) {
    let p = parent.get(pid), depth = 0;
    while (p && p !== process.pid && depth++ < 64) p = parent.get(p);
    if (p !== process.pid) continue;
    let cmd = '';
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { continue; }
    const type = (cmd.match(/--type=(\S+)/) || [])[1] || (/chrom/.test(cmd) ? 'browser' : 'other');
    const util = (cmd.match(/--utility-sub-type=(\S+)/) || [])[1];
    out.push({ pid, type: util ? `${type}:${util.replace(/^.*\./, '')}` : type });
  }
  return out;
}

// VmRSS, VmHWM, RssAnon (bytes) and CPU time (clock ticks) of one process.
function procMem(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1] || 0) * 1024;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), cpu: Number(f[11]) + Number(f[12]) };
  } catch { return null; }
}

// ---------------------------------------------------------------- the page

// Installed in the page: the contenders, each hashing window.__benchFile.
function installContenders({ BLOCK, modulePath }) {
  const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
  const file = () => window.__benchFile;
  window.__bench = {
    // (a) the page's own hasher.
    async page() {
      const { hashFile } = await import(modulePath);
      const f = file();
      let progress = 0, calls = 0;
      const t0 = performance.now();
      window.__benchProgress = 0;
      const r = await hashFile(f, { onProgress(n) { progress = n; calls++; window.__benchProgress = n; }, signal: new AbortController().signal });
      const ms = performance.now() - t0;
      const bad = r.digests.findIndex((d) => !(d instanceof Uint8Array) || d.length !== 32);
      return { ms, hash: r.hash, digests: r.digests.map(hex), badDigest: bad, progress, calls };
    },
    // Starts the page's hasher (its worker pool, if it keeps one) on one block.
    async warm() {
      const { hashFile } = await import(modulePath);
      await hashFile(file().slice(0, BLOCK));
    },
    // (b) spark-md5 as the classic large-file upload demos use it: 4 MiB slices
    // read one at a time on the main thread, appended to one SparkMD5.ArrayBuffer.
    async spark() {
      const f = file();
      const t0 = performance.now();
      const spark = new SparkMD5.ArrayBuffer();
      for (let off = 0; off < f.size; off += BLOCK) spark.append(await f.slice(off, off + BLOCK).arrayBuffer());
      const md5 = spark.end();
      return { ms: performance.now() - t0, md5 };
    },
    // (c) sha256-4m with WebCrypto, one block at a time, no workers.
    async subtle() {
      const f = file();
      const t0 = performance.now();
      const n = Math.max(1, Math.ceil(f.size / BLOCK));
      const all = new Uint8Array(n * 32);
      for (let i = 0; i < n; i++) {
        const buf = await f.slice(i * BLOCK, Math.min(f.size, (i + 1) * BLOCK)).arrayBuffer();
        all.set(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)), i * 32);
      }
      const hash = 'sha256-4m:' + hex(new Uint8Array(await crypto.subtle.digest('SHA-256', all)));
      return { ms: performance.now() - t0, hash };
    },
    // Where the time goes: reading alone (4 MiB slices, `depth` at a time,
    // no hashing), and WebCrypto alone (one 4 MiB buffer in memory digested
    // as many times as the file has blocks, one at a time).
    async read(depth = 1) {
      const f = file();
      const t0 = performance.now();
      let bytes = 0, next = 0;
      const lane = async () => {
        while (next * BLOCK < f.size) {
          const off = BLOCK * next++;
          const got = (await f.slice(off, off + BLOCK).arrayBuffer()).byteLength;
          bytes += got; // (not `bytes += await …`: that would read `bytes` before the await)
        }
      };
      await Promise.all(Array.from({ length: depth }, lane));
      return { ms: performance.now() - t0, bytes };
    },
    async read4() { return this.read(4); },
    async digest() {
      const f = file();
      const buf = new Uint8Array(BLOCK).fill(7);
      const n = Math.max(1, Math.ceil(f.size / BLOCK));
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await crypto.subtle.digest('SHA-256', buf);
      return { ms: performance.now() - t0, bytes: n * BLOCK };
    },
  };
  window.__benchProgress = 0;
}

// Puts `filePath` into an <input type=file> of our own, inside a shadow root
// and with its events stopped, so that none of the page's own listeners sees
// it (nothing gets uploaded); leaves the File in window.__benchFile.
async function giveFile(page, filePath) {
  await page.evaluate(() => {
    document.getElementById('tusk-bench-host')?.remove();
    const host = document.createElement('div');
    host.id = 'tusk-bench-host';
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'tusk-bench-input';
    for (const ev of ['input', 'change']) input.addEventListener(ev, (e) => e.stopPropagation());
    host.attachShadow({ mode: 'open' }).append(input);
    document.body.append(host);
  });
  await page.locator('#tusk-bench-input').setInputFiles(filePath);
  return page.evaluate(() => {
    const f = document.getElementById('tusk-bench-host').shadowRoot.getElementById('tusk-bench-input').files[0];
    window.__benchFile = f;
    return f ? f.size : -1;
  });
}

async function openPage(context, { spark }) {
  const page = await context.newPage();
  const sideRequests = [];
  // The page may list files (GET); anything else to the API would be an upload.
  page.on('request', (r) => {
    if (/\/(api|tus)\//.test(new URL(r.url()).pathname) && !['GET', 'HEAD'].includes(r.method())) sideRequests.push(`${r.method()} ${r.url()}`);
  });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`page console.${m.type()}: ${m.text()}`); });
  const resp = await page.goto(opt.url, { waitUntil: 'load' });
  if (!resp || !resp.ok()) fail(`GET ${opt.url} answered ${resp && resp.status()}`);
  if (spark) {
    await page.addScriptTag({ path: require.resolve('spark-md5/spark-md5.min.js') });
    if (!(await page.evaluate(() => typeof SparkMD5 === 'function'))) fail('spark-md5 did not load in the page');
  }
  const kind = await page.evaluate(async (m) => {
    try { return typeof (await import(m)).hashFile; } catch (e) { return `import failed: ${e}`; }
  }, opt.module);
  if (kind !== 'function') fail(`${opt.module}: no hashFile (${kind})`);
  await page.evaluate(installContenders, { BLOCK, modulePath: opt.module });
  return { page, sideRequests };
}

// ---------------------------------------------------------------- main

const allContenders = [
  { key: 'page', label: `page hashFile (${opt.module})` },
  { key: 'spark', label: 'spark-md5, main thread, 4 MiB slices' },
  { key: 'subtle', label: 'WebCrypto, one block at a time' },
  { key: 'read', label: 'read only, 1 slice at a time', diag: true },
  { key: 'read4', label: 'read only, 4 slices at a time', diag: true },
  { key: 'digest', label: 'WebCrypto digest only, in memory, 1 at a time', diag: true },
];
const contenders = opt.only ? allContenders.filter((c) => opt.only.split(',').includes(c.key)) : allContenders;
if (opt.only && !(contenders.some((c) => c.key === 'page') && contenders.some((c) => c.key === 'spark'))) {
  // The report is page against spark-md5: without both, only the per-run lines mean anything.
  console.error('note: --only without both page and spark: ratios are not meaningful');
}

async function main() {
  const fileSize = fs.statSync(opt.file).size;
  let ref = null;
  if (runs > 0) {
    log(`reference hashes of ${opt.file} (${mib(fileSize)} MiB) in node…`);
    ref = referenceHashes(opt.file);
    log(`  ${ref.sha256_4m}  md5 ${ref.md5}`);
  }

  const browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...opt['chromium-arg']],
  });
  const cleanup = () => browser.close().catch(() => {});
  try {
    const chromiumVersion = browser.version();
    const result = { chromiumVersion, fileSize, runs: {}, loadBefore: os.loadavg()[0] };

    if (runs > 0) await throughputRun(browser, ref, result);

    // ---- memory
    if (opt['mem-file']) result.memory = await memoryRun(browser);

    const report = formatReport(result);
    console.log(report.text);
    if (opt.results) writeResults(opt.results, report.markdown);
    if (result.failure) fail(result.failure);
    if (result.memory?.failure) fail(result.memory.failure);
  } finally {
    await cleanup();
  }
}

// The contenders in alternation, `runs` rounds, in one page.
async function throughputRun(browser, ref, result) {
  const fileSize = ref.size;
  const context = await browser.newContext({ bypassCSP: true });
  const { page, sideRequests } = await openPage(context, { spark: true });
  const cdp = await context.newCDPSession(page);
  result.hardwareConcurrency = await page.evaluate(() => navigator.hardwareConcurrency);
  const given = await giveFile(page, opt.file);
  if (given !== fileSize) fail(`the page sees a file of ${given} bytes, not ${fileSize}`);

  for (const c of contenders) result.runs[c.key] = [];
  rounds: for (let round = 1; round <= runs; round++) {
    const line = [];
    for (const c of contenders) {
      await cdp.send('HeapProfiler.collectGarbage').catch(() => {});
      const run = page.evaluate((k) => window.__bench[k](), c.key);
      let r;
      try {
        r = await withTimeout(c.key === 'page' ? watchProgress(page, run, fileSize) : run, timeoutMs, c.label);
      } catch (e) {
        // A stall ends the rounds (the page's hasher is stuck) but not the
        // report: the rounds done so far and the memory run still count.
        if (!(e.benchFailure && / stalled: /.test(e.message))) throw e;
        result.failure = `round ${round}: ${e.message}`;
        log(`round ${round}: ${e.message}`);
        for (const k of Object.keys(result.runs)) result.runs[k].length = round - 1;
        break rounds;
      }
      check(c.key, r, ref);
      result.runs[c.key].push(r.ms / 1000);
      line.push(`${c.key} ${fmt(r.ms / 1000)}s (${fmt(fileSize / r.ms / 1000, 0)} MB/s)`);
    }
    log(`round ${round}: ${line.join(', ')}`);
  }
  if (sideRequests.length) fail(`the page made API requests during the benchmark: ${sideRequests.join('; ')}`);
  result.loadAfter = os.loadavg()[0];
  await context.close();
}

// Resolves as `run` does, or fails once the page's hashFile has made no
// progress (window.__benchProgress) for --stall seconds.
async function watchProgress(page, run, size) {
  let done = false, timer;
  const watch = new Promise((_, reject) => {
    let last = -1, movedAt = performance.now();
    const tick = async () => {
      if (done) return;
      const progress = await page.evaluate(() => window.__benchProgress).catch(() => null);
      if (done) return;
      if (progress !== last) { last = progress; movedAt = performance.now(); }
      else if (performance.now() - movedAt > Number(opt.stall) * 1000) {
        const e = new Error(`the page's hashFile stalled: no progress for ${opt.stall} s at ${progress} of ${size} bytes (${Math.round((size - progress) / BLOCK)} blocks never finished)`);
        e.benchFailure = true;
        return reject(e);
      }
      timer = setTimeout(tick, 1000);
    };
    tick();
  });
  try { return await Promise.race([run, watch]); } finally { done = true; clearTimeout(timer); }
}

function check(key, r, ref) {
  if (key === 'page') {
    if (r.hash !== ref.sha256_4m) fail(`page hashFile gave ${r.hash}, node computes ${ref.sha256_4m}`);
    if (r.badDigest !== -1) fail(`page hashFile: digests[${r.badDigest}] is not a 32-byte Uint8Array`);
    if (r.digests.length !== ref.digests.length) fail(`page hashFile gave ${r.digests.length} block digests, node ${ref.digests.length}`);
    const i = r.digests.findIndex((d, j) => d !== ref.digests[j]);
    if (i !== -1) fail(`page hashFile: block ${i} digest ${r.digests[i]}, node ${ref.digests[i]}`);
    if (r.progress !== ref.size) fail(`page hashFile: last onProgress(${r.progress}), file has ${ref.size} bytes`);
  } else if (key === 'spark') {
    if (r.md5 !== ref.md5) fail(`spark-md5 gave ${r.md5}, node's md5 is ${ref.md5}`);
  } else if (key === 'subtle') {
    if (r.hash !== ref.sha256_4m) fail(`WebCrypto baseline gave ${r.hash}, node computes ${ref.sha256_4m}`);
  } else if (key === 'read' || key === 'read4') {
    if (r.bytes !== ref.size) fail(`${key}: read ${r.bytes} bytes of ${ref.size}`);
  }
}

// Hashes the memory file with the page's hashFile in a fresh context (so a
// fresh renderer), sampling every process of the browser and the page's JS
// heap every `sampleMs`.
async function memoryRun(browser) {
  const memPath = opt['mem-file'];
  const size = fs.statSync(memPath).size;
  const allocated = fs.statSync(memPath).blocks * 512;
  const expected = allocated === 0 ? zeroHash(size) : null;
  if (!expected) log(`${memPath} is not sparse (${allocated} bytes allocated): its hash is computed in node first`);
  const ref = expected || referenceHashes(memPath);

  const context = await browser.newContext({ bypassCSP: true });
  const { page, sideRequests } = await openPage(context, { spark: false });
  const cdp = await context.newCDPSession(page);
  const hardwareConcurrency = await page.evaluate(() => navigator.hardwareConcurrency);
  const given = await giveFile(page, memPath);
  if (given !== size) fail(`the page sees a file of ${given} bytes, not ${size}`);

  const heap = async () => { try { return await cdp.send('Runtime.getHeapUsage'); } catch { return null; } };
  const snapshot = () => {
    const procs = chromiumProcesses();
    return procs.map((p) => ({ ...p, ...procMem(p.pid) })).filter((p) => p.rss !== undefined);
  };

  // Baseline: the page loaded, the file given, garbage collected, settled.
  await new Promise((r) => setTimeout(r, 1000));
  await cdp.send('HeapProfiler.collectGarbage').catch(() => {});
  await new Promise((r) => setTimeout(r, 1000));
  const base = snapshot();
  const baseHeap = await heap();
  // What merely starting the hasher costs (workers), apart from hashing a large file.
  await withTimeout(page.evaluate(() => window.__bench.warm()), timeoutMs, 'hashing one block to start the hasher');
  await cdp.send('HeapProfiler.collectGarbage').catch(() => {});
  await new Promise((r) => setTimeout(r, 1000));
  const warm = snapshot();

  log(`memory: hashing ${mib(size)} MiB with the page's hashFile, sampling every ${sampleMs} ms…`);
  const t0 = performance.now();
  const samples = [];
  let running = true, lastLog = performance.now();
  let lastProgress = -1, movedAt = performance.now(), stalled = null;
  const stall = new Promise((_, reject) => { stalled = (e) => { e.benchFailure = true; reject(e); }; });
  const stallMs = Number(opt.stall) * 1000;
  const sampler = (async () => {
    while (running) {
      const t = performance.now();
      const progress = await page.evaluate(() => window.__benchProgress).catch(() => null);
      const s = { procs: snapshot(), heap: await heap(), progress };
      samples.push(s);
      if (progress !== lastProgress) { lastProgress = progress; movedAt = t; }
      else if (t - movedAt > stallMs) {
        stalled(new Error(`the page's hashFile stalled: no progress for ${opt.stall} s at ${progress} of ${size} bytes (${Math.round((size - progress) / BLOCK)} blocks never finished)`));
        return;
      }
      if (t - lastLog >= 10000) {
        lastLog = t;
        const r = s.procs.filter((p) => p.type === 'renderer').map((p) => mib(p.rss)).join('/');
        log(`  ${((t - t0) / 1000).toFixed(0)} s: ${mib(progress || 0)} MiB hashed; renderer RSS ${r} MiB`);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, sampleMs - (performance.now() - t))));
    }
  })();

  let r, failure = null;
  try {
    r = await withTimeout(Promise.race([page.evaluate(() => window.__bench.page()), stall]), 2 * 3600e3, 'memory run');
    if (!r) fail('memory run: no result');
  } catch (e) {
    // A stall is a result too: the memory up to it is reported, then the run fails.
    if (!(e.benchFailure && / stalled: /.test(e.message))) throw e;
    failure = e.message;
  } finally { running = false; await sampler; }
  const secs = (performance.now() - t0) / 1000;
  const end = snapshot();
  if (!failure) check('page', r, { ...ref, md5: null });
  if (sideRequests.length) fail(`the page made API requests during the memory run: ${sideRequests.join('; ')}`);
  await context.close();

  // The tab's renderer: the renderer that used the most CPU during the run.
  const cpuOf = (snap, pid) => (snap.find((p) => p.pid === pid) || {}).cpu;
  const renderers = end.filter((p) => p.type === 'renderer');
  let tab = null, best = -1;
  for (const p of renderers) {
    const used = p.cpu - (cpuOf(base, p.pid) ?? p.cpu);
    if (used > best) { best = used; tab = p.pid; }
  }
  if (tab === null) fail('no renderer process found');
  const rssOf = (snap, pid) => (snap.find((p) => p.pid === pid) || {}).rss || 0;
  const anonOf = (snap, pid) => (snap.find((p) => p.pid === pid) || {}).anon || 0;
  // The browser as the tab sees it: every process but other tabs' renderers
  // (the first context's renderer may still be exiting; spares sit idle).
  const total = (snap) => snap.reduce((s, p) => s + (p.type !== 'renderer' || p.pid === tab ? p.rss : 0), 0);
  const maxOf = (f) => Math.max(...samples.map(f), 0);
  const heapUsed = (h) => (h ? h.usedSize : 0);
  const heapTotal = (h) => (h ? h.totalSize : 0);
  const baseByType = {}, peakByType = {};
  for (const p of base) if (p.pid !== tab) baseByType[p.type] = (baseByType[p.type] || 0) + p.rss;
  for (const s of samples) {
    const byType = {};
    for (const p of s.procs) if (p.pid !== tab) byType[p.type] = (byType[p.type] || 0) + p.rss;
    for (const [k, v] of Object.entries(byType)) peakByType[k] = Math.max(peakByType[k] || 0, v);
  }
  // The tab's RSS as the hashing goes on: does it level off or keep growing?
  const course = [];
  for (const q of [0.1, 0.25, 0.5, 0.75, 0.9]) {
    const s = samples.find((x) => x.progress != null && x.progress >= q * size);
    if (s) course.push([q, rssOf(s.procs, tab)]);
  }
  return {
    size, secs, samples: samples.length, tabPid: tab, course, hardwareConcurrency, failure,
    base: rssOf(base, tab), warm: rssOf(warm, tab),
    rows: [
      ['tab renderer RSS (page + its workers)', rssOf(base, tab), maxOf((s) => rssOf(s.procs, tab))],
      ['tab renderer anonymous RSS', anonOf(base, tab), maxOf((s) => anonOf(s.procs, tab))],
      ['tab renderer VmHWM (kernel peak, at the end)', (base.find((p) => p.pid === tab) || {}).hwm || 0, (end.find((p) => p.pid === tab) || {}).hwm || 0],
      ['main-thread JS heap used (CDP)', heapUsed(baseHeap), maxOf((s) => heapUsed(s.heap))],
      ['main-thread JS heap total (CDP)', heapTotal(baseHeap), maxOf((s) => heapTotal(s.heap))],
      ['browser + tab renderer + helpers RSS, summed', total(base), maxOf((s) => total(s.procs))],
    ],
    others: Object.keys(peakByType).sort().map((k) => [k, baseByType[k] || 0, peakByType[k]]),
  };
}

function formatReport(res) {
  const mb = res.fileSize;
  const med = {};
  let perRound = [], ratio = NaN;
  const done = res.runs[contenders[0]?.key]?.length || 0; // complete rounds
  if (done > 0) {
    for (const c of contenders) med[c.key] = median(res.runs[c.key]);
    if (res.runs.page && res.runs.spark) perRound = res.runs.page.map((t, i) => res.runs.spark[i] / t);
    ratio = med.spark / med.page;
  }
  const lines = [];
  lines.push(`${os.type()} ${os.release()} ${os.arch()}, ${os.cpus().length} cores (${cpuModel()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; Chromium ${res.chromiumVersion} headless (navigator.hardwareConcurrency ${res.hardwareConcurrency ?? res.memory?.hardwareConcurrency}); node ${process.version}, playwright-core ${pkgVersion('playwright-core')}, spark-md5 ${pkgVersion('spark-md5')}.`);
  if (res.failure) lines.push(`THROUGHPUT RUN FAILED in ${res.failure}${done ? `; the ${done} rounds before it:` : ''}`);
  if (done > 0) {
    lines.push(`${mib(mb)} MiB file (random bytes, in the page cache), ${done} rounds, contenders alternating in one page; medians. Load average (1 min) ${fmt(res.loadBefore)} before, ${fmt(res.loadAfter)} after.`);
    lines.push('');
    lines.push('| what                                          | seconds | MB/s   | × spark-md5 |');
    lines.push('|-----------------------------------------------|---------|--------|-------------|');
    for (const c of contenders.filter((c) => !c.diag)) {
      lines.push(`| ${c.label.padEnd(45)} | ${fmt(med[c.key]).padStart(7)} | ${fmt(mb / med[c.key] / 1e6, 1).padStart(6)} | ${fmt(med.spark / med[c.key]).padStart(11)} |`);
    }
    lines.push('');
    if (perRound.length) lines.push(`page / spark-md5: ${fmt(ratio)}× (median of per-round ratios ${fmt(median(perRound))}×, range ${fmt(Math.min(...perRound))}–${fmt(Math.max(...perRound))}×); target ≥ 4×: ${ratio >= 4 ? 'met' : 'NOT met'}.`);
    lines.push('All hashes checked against node (sha256-4m and every block digest for the page and the WebCrypto baseline, md5 for spark-md5).');
    lines.push('');
    lines.push('Where the time goes (same rounds, main thread):');
    lines.push('');
    lines.push('| what                                          | seconds | MB/s   |');
    lines.push('|-----------------------------------------------|---------|--------|');
    for (const c of contenders.filter((c) => c.diag)) {
      lines.push(`| ${c.label.padEnd(45)} | ${fmt(med[c.key]).padStart(7)} | ${fmt(mb / med[c.key] / 1e6, 1).padStart(6)} |`);
    }
    lines.push('');
    lines.push('per run (seconds):');
    for (const c of contenders) lines.push(`  ${c.key.padEnd(7)} ${res.runs[c.key].map((t) => fmt(t)).join('  ')}`);
  }
  if (res.memory) {
    const m = res.memory;
    lines.push('');
    const how = m.failure ? `FAILED after ${fmt(m.secs, 1)} s: ${m.failure}` : `${fmt(m.secs, 1)} s (${fmt(m.size / m.secs / 1e6, 0)} MB/s), hash checked`;
    lines.push(`Memory: the page's hashFile (${opt.module}) on a ${fmt(m.size / 2 ** 30, 1)} GiB sparse file (zeros) in a fresh tab: ${how}; ${m.samples} samples every ${sampleMs} ms; the tab's renderer is pid ${m.tabPid}.`);
    lines.push('');
    lines.push('| what                                          | before MiB | peak MiB | peak − before MiB |');
    lines.push('|-----------------------------------------------|------------|----------|-------------------|');
    for (const [what, b, p] of m.rows) lines.push(`| ${what.padEnd(45)} | ${mib(b).padStart(10)} | ${mib(p).padStart(8)} | ${mib(p - b).padStart(17)} |`);
    lines.push('');
    lines.push(`tab renderer RSS once the hasher has started (one 4 MiB block hashed): ${mib(m.warm)} MiB (${mib(m.warm - m.base)} above before).`);
    if (m.course.length) lines.push(`tab renderer RSS as the hashing goes (MiB above before): ${m.course.map(([q, v]) => `${q * 100}% ${mib(v - m.base)}`).join(', ')}.`);
    lines.push(`other processes (RSS before → peak MiB): ${m.others.map(([k, b, p]) => `${k} ${mib(b)} → ${mib(p)}`).join(', ')}.`);
  }
  const text = lines.join('\n');
  return { text, markdown: text };
}

function cpuModel() {
  try { return (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1] || '?'; } catch { return '?'; }
}
function pkgVersion(name) {
  try { return JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve(`${name}/package.json`)), 'package.json'), 'utf8')).version; } catch { return '?'; }
}

function writeResults(file, body) {
  const now = new Date();
  const day = now.toISOString().slice(0, 10);
  let head = '';
  if (!fs.existsSync(file)) head = `# bench/web-hash — ${day}\n\n`;
  const page = opt.page ? `Page: ${opt.page}.\n` : '';
  const section = `${head}## Run at ${now.toISOString().slice(11, 16)} UTC\n\nCommand: \`${opt.command}\`\n${page}\n\`\`\`\n${body}\n\`\`\`\n\n`;
  fs.appendFileSync(file, section);
  log(`results appended to ${file}`);
}

main().catch((e) => {
  console.error(e.benchFailure ? `\nBENCHMARK FAILED: ${e.message}` : e);
  process.exit(1);
});
