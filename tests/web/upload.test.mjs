// Uploading through the file picker, and instant upload of content the
// server already holds.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { MiB, TIMEOUT, assertStored, makeFile, q, row, session, waitForState } from './harness.mjs';

test('three files chosen with the file picker are uploaded and download unchanged', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const files = [
    { name: 'big.bin', size: 50 * MiB },
    { name: 'notes.txt', size: 1000 },
    { name: 'two-chunks.bin', size: 4 * MiB + 17 },
  ].map((f) => ({ ...f, path: makeFile(s.files, f.name, f.size) }));

  // The visible button opens the picker (#pick-files).
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#choose-files')]);
  assert.ok(chooser.isMultiple(), 'the file picker takes several files');
  assert.equal(await chooser.element().getAttribute('id'), 'pick-files', '#choose-files opens #pick-files');
  await chooser.setFiles(files.map((f) => f.path));

  for (const f of files) await row(page, f.name).waitFor({ state: 'attached' });
  for (const f of files) await waitForState(page, f.name, 'done', { timeout: TIMEOUT.upload });

  for (const f of files) await assertStored(s, f.name, f.path);
  assert.equal((await s.api.files()).length, 3, 'three files on the server');

  // The chunks went up as 4 MiB chunks: 13 for 50 MiB, 2 for 4 MiB + 17.
  const byUpload = new Map();
  for (const p of s.chunkPuts) byUpload.set(p.id, (byUpload.get(p.id) ?? new Set()).add(p.index));
  const counts = [...byUpload.values()].map((indexes) => indexes.size).sort((a, b) => a - b);
  assert.deepEqual(counts, [1, 2, 13], `distinct chunks per upload: ${JSON.stringify(counts)}`);
  // Each chunk carried the RFC 9530 Content-Digest of its own bytes.
  for (const [id, indexes] of byUpload) {
    const { body } = await s.api.upload(id);
    const bytes = fs.readFileSync(files.find((f) => f.name === body.upload.name).path);
    for (const p of s.chunkPuts.filter((p) => p.id === id)) {
      const chunk = bytes.subarray(p.index * 4 * MiB, (p.index + 1) * 4 * MiB);
      const want = `sha-256=:${createHash('sha256').update(chunk).digest('base64')}:`;
      assert.equal(p.digest, want, `Content-Digest of chunk ${p.index} of ${body.upload.name}`);
    }
    assert.equal(indexes.size, body.upload.chunk_count);
  }

  // The page's total shows 100 %.
  await page.waitForFunction(() => document.querySelector('#total-progress')?.getAttribute('aria-valuenow') === '100');
  // The files list shows them.
  for (const f of files) await page.locator(`#files .file[data-name=${q(f.name)}]`).waitFor({ state: 'attached' });
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('the same bytes under another name are an instant upload: no chunk is sent', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const original = makeFile(s.files, 'original.bin', 6 * MiB + 123);
  await page.setInputFiles('#pick-files', original);
  await waitForState(page, 'original.bin', 'done', { timeout: TIMEOUT.upload });
  assert.ok(s.chunkPuts.length >= 2, `the first upload sent its chunks (${s.chunkPuts.length})`);
  assert.notEqual(await row(page, 'original.bin').getAttribute('data-instant'), 'true', 'the first upload is not instant');

  const copy = path.join(s.files, 'copy-of-original.bin');
  fs.copyFileSync(original, copy);
  const before = s.chunkPuts.length;
  await page.setInputFiles('#pick-files', copy);
  await waitForState(page, 'copy-of-original.bin', 'done', { timeout: TIMEOUT.upload });

  assert.equal(s.chunkPuts.length - before, 0, 'no chunk request for the duplicate');
  assert.equal(await row(page, 'copy-of-original.bin').getAttribute('data-instant'), 'true', 'data-instant="true" on the duplicate');
  const a = await assertStored(s, 'original.bin', original);
  const b = await assertStored(s, 'copy-of-original.bin', copy);
  assert.notEqual(a.id, b.id, 'two files');
  assert.equal(a.hash, b.hash, 'one content');
  // The row says so, and the file list follows.
  assert.match(await row(page, 'copy-of-original.bin').innerText(), /instant/i);
  for (const name of ['original.bin', 'copy-of-original.bin']) {
    await page.locator(`#files .file[data-name=${q(name)}]`).waitFor({ state: 'attached' });
  }
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
