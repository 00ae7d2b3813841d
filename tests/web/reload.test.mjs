// Reload mid-upload: the page remembers the unfinished upload, asks for the
// file again, and then sends only the chunks the server does not have.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MiB, TIMEOUT, assertStored, gateChunks, makeFile, session, uploadId, waitForState, waitReceived,
} from './harness.mjs';

test('after a reload mid-upload, re-selecting the file sends only the missing chunks', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const name = 'reload-me.bin';
  const file = makeFile(s.files, name, 50 * MiB);
  const K = 3;

  // The first K chunk requests go through; every later one is held and
  // never continued (the reload drops them).
  const gate = await gateChunks(page, { pass: K });
  await page.setInputFiles('#pick-files', file);
  const id = await uploadId(page, name);
  const before = await waitReceived(s, id, K);
  assert.equal(before.received.length, K, `exactly ${K} chunks on the server: ${JSON.stringify(before.received)}`);
  assert.equal(before.chunk_count, 13, '50 MiB in 4 MiB chunks');
  await waitForState(page, name, 'uploading');

  await page.reload();
  // The old document is gone and its held requests with it; the reloaded
  // page's requests go through.
  gate.passAll();
  await waitForState(page, name, 'needs-file');
  await page.locator('#resume-banner').waitFor({ state: 'visible' });
  // Nothing can be sent without the file, and nothing was. (Requests the
  // old document started, and the reload dropped, were all counted by now.)
  const atReload = s.chunkPuts.length;
  assert.equal((await s.api.upload(id)).body.upload.received.length, K, 'the server still has K chunks');

  await page.setInputFiles('#pick-files', file);
  await waitForState(page, name, 'done', { timeout: TIMEOUT.upload });

  const after = s.chunkPuts.slice(atReload);
  const indexes = after.map((p) => p.index).sort((a, b) => a - b);
  assert.ok(after.every((p) => p.id === id), 'the same upload was resumed');
  assert.equal(after.length, before.chunk_count - K, `chunk PUTs after re-select (${JSON.stringify(indexes)})`);
  const resent = indexes.filter((i) => before.received.includes(i));
  assert.deepEqual(resent, [], 'no chunk the server had was sent again');
  assert.equal(await page.locator('#resume-banner').isVisible(), false, 'the banner is gone');
  assert.equal(await page.locator('#queue .item').count(), 1, 'the re-selected file joined its old row, no second row');
  assert.equal(await page.locator('#queue .item').getAttribute('data-upload-id'), id);
  await assertStored(s, name, file);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
