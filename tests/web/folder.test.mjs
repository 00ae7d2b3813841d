// Folders: dropped on the drop zone (with more than 100 entries in one
// folder, past what one readEntries call returns) and chosen with the
// folder picker. Every file keeps its relative path as its name.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { TIMEOUT, dropPaths, makeFile, poll, session, sha256_4mFile } from './harness.mjs';

/** Makes `root/<top>/…`: a nested subfolder and a folder of `many` files. Returns {relative name → path}. */
function makeTree(root, top, many) {
  const files = {};
  const add = (rel, size) => {
    files[`${top}/${rel}`] = makeFile(root, `${top}/${rel}`, size);
  };
  add('a.txt', 10);
  add('sub/b.txt', 2000);
  add('sub/deeper/c.bin', 70_000);
  for (let i = 1; i <= many; i++) add(`many/f${String(i).padStart(3, '0')}.txt`, 1 + (i % 7) * 100);
  return files;
}

/** Waits until the server lists exactly the names of `want`, then checks every file's size and hash. */
async function assertServerHas(s, want) {
  const names = Object.keys(want).sort();
  // Done when every file is there; or, for a page that misses some, when
  // its total reached 100 % and the list stopped growing (so a failure is
  // reported at once, not after the timeout).
  let stable = 0;
  let prev = -1;
  const { list: files } = await poll(
    async () => ({
      list: await s.api.files(),
      total: await s.page.locator('#total-progress').getAttribute('aria-valuenow'),
    }),
    ({ list, total }) => {
      stable = total === '100' && list.length === prev ? stable + 1 : 0;
      prev = list.length;
      return list.length >= names.length || stable >= 8;
    },
    { timeout: TIMEOUT.upload, message: `${names.length} files on the server`, interval: 250 },
  );
  const have = new Set(files.map((f) => f.name));
  const missing = names.filter((n) => !have.has(n));
  assert.deepEqual(missing, [], `files missing on the server (${missing.length} of ${names.length})`);
  assert.deepEqual(files.map((f) => f.name).sort(), names, 'the server holds every file under its relative path');
  for (const f of files) {
    const local = want[f.name];
    assert.equal(f.size, fs.statSync(local).size, `size of ${f.name}`);
    assert.equal(f.hash, sha256_4mFile(local), `hash of ${f.name}`);
    assert.ok((await s.api.download(f.url)).equals(fs.readFileSync(local)), `the bytes of ${f.name}`);
  }
  return files;
}

test('a folder tree dropped on the drop zone is uploaded with relative names', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const tree = makeTree(s.files, 'photos', 130);
  const loose = makeFile(s.files, 'loose.txt', 321);
  const want = { ...tree, 'loose.txt': loose };

  await dropPaths(page, '#drop-zone', [path.join(s.files, 'photos'), loose]);

  // The rows come first (the queue is virtualised: at least some are shown).
  await page.locator('#queue .item').first().waitFor({ state: 'attached' });
  const files = await assertServerHas(s, want);
  assert.equal(files.filter((f) => f.name.startsWith('photos/many/')).length, 130, 'all 130 files of the big folder');
  await page.waitForFunction(() => document.querySelector('#total-progress')?.getAttribute('aria-valuenow') === '100');
  const bad = await page.locator('#queue .item[data-state=failed]').count();
  assert.equal(bad, 0, 'no row failed');
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('a folder chosen with the folder picker is uploaded with relative names', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const want = makeTree(s.files, 'docs', 12);

  const input = page.locator('#pick-folder');
  assert.equal(await input.getAttribute('type'), 'file');
  assert.ok((await input.getAttribute('webkitdirectory')) !== null, '#pick-folder has webkitdirectory');
  await input.setInputFiles(path.join(s.files, 'docs'));

  await assertServerHas(s, want);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
