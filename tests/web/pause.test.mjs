// Pause and resume: a paused upload sends nothing until it is resumed, then
// finishes with the right bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MiB, TIMEOUT, assertStored, gateChunks, makeFile, observe, poll, row, session, uploadId, waitForState, waitReceived,
} from './harness.mjs';

test('a paused upload starts no chunk request until resumed, then completes', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const name = 'pause-me.bin';
  const file = makeFile(s.files, name, 50 * MiB);

  // Two chunks go through; the next ones are held at the network layer, so
  // the upload is surely mid-way when we pause it, whatever the speed.
  const gate = await gateChunks(page, { pass: 2 });
  await page.setInputFiles('#pick-files', file);
  const id = await uploadId(page, name);
  await waitReceived(s, id, 2);
  await waitForState(page, name, 'uploading');
  // Every parallel slot is taken by a held request (the page sends 3–4 at once).
  await poll(() => gate.held.length, (n) => n >= 3, { message: 'three chunk requests in flight' });

  await row(page, name).locator('button[data-action=pause]').click();
  await waitForState(page, name, 'paused');
  const startedBeforePause = s.chunkPuts.length;
  const sentBeforePause = new Set(s.chunkPuts.map((p) => p.index));

  // Let the requests that were in flight finish (or fail, if the page
  // aborted them), then watch: nothing new may start while paused.
  await gate.release();
  await gate.settled();
  const atPause = (await s.api.upload(id)).body.upload.received;
  await observe(2000);
  assert.equal(await row(page, name).getAttribute('data-state'), 'paused', 'still paused');
  assert.deepEqual(
    s.chunkPuts.slice(startedBeforePause).map((p) => p.index),
    [],
    'no chunk request started while paused',
  );
  const later = (await s.api.upload(id)).body.upload;
  assert.deepEqual(later.received, atPause, "the server's received list did not change while paused");
  assert.ok(atPause.every((i) => sentBeforePause.has(i)), 'the server got only chunks sent before the pause');
  assert.ok(atPause.length < later.chunk_count, `the upload is unfinished (${atPause.length}/${later.chunk_count})`);
  assert.ok(await row(page, name).locator('button[data-action=resume]').isVisible(), 'a paused row offers resume');

  await row(page, name).locator('button[data-action=resume]').click();
  await waitForState(page, name, 'done', { timeout: TIMEOUT.upload });
  assert.ok(s.chunkPuts.length > startedBeforePause, 'chunks were sent after resume');
  const done = (await s.api.upload(id)).body.upload;
  assert.equal(done.received.length, done.chunk_count, 'every chunk on the server');
  await assertStored(s, name, file);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
