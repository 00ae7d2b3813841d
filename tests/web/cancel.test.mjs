// Cancel: a cancelled upload leaves nothing behind: the upload is gone on
// the server, no file is recorded, and its bytes left the data folder.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MiB, TIMEOUT, gateChunks, listFiles, makeFile, poll, rowState, row, session, uploadId, waitForState, waitReceived,
} from './harness.mjs';

const added = (before, after) => [...after.keys()].filter((k) => !before.has(k)).sort();

test('a cancelled upload leaves no upload, no file and no bytes behind', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const dataDir = s.server.dataDir;

  // What a finished upload leaves in the data folder: its content.
  const initial = listFiles(dataDir);
  const kept = makeFile(s.files, 'kept.bin', 5 * MiB);
  await page.setInputFiles('#pick-files', kept);
  await waitForState(page, 'kept.bin', 'done', { timeout: TIMEOUT.upload });
  const baseline = listFiles(dataDir);
  assert.ok(added(initial, baseline).length >= 1, `a finished upload adds its content to the data folder: ${JSON.stringify([...baseline.keys()])}`);

  // A 50 MiB upload, stopped mid-way: two chunks pass, the rest are held.
  const name = 'cancel-me.bin';
  const file = makeFile(s.files, name, 50 * MiB);
  const gate = await gateChunks(page, { pass: 2 });
  await page.setInputFiles('#pick-files', file);
  const id = await uploadId(page, name);
  await waitReceived(s, id, 2);
  await waitForState(page, name, 'uploading');
  const mid = listFiles(dataDir);
  const staged = added(baseline, mid);
  assert.ok(staged.length >= 1, 'the unfinished upload has bytes in the data folder');

  await row(page, name).locator('button[data-action=cancel]').click();
  // The row shows the cancel (or leaves the queue).
  await page.waitForFunction(
    (name) => {
      const el = [...document.querySelectorAll('#queue .item')].find((e) => e.dataset.name === name);
      return !el || el.dataset.state === 'cancelled';
    },
    name,
  );
  // Requests that were in flight may now reach the server: they must not revive it.
  await gate.release();
  await gate.settled();

  const gone = await poll(
    () => s.api.upload(id),
    (r) => r.status === 410,
    { timeout: TIMEOUT.step, message: `GET /api/v1/uploads/${id} to answer 410` },
  );
  assert.equal(gone.body.error.code, 'upload_gone');
  assert.equal(gone.body.error.reason, 'terminated');

  const names = (await s.api.files()).map((f) => f.name);
  assert.deepEqual(names, ['kept.bin'], 'no file recorded for the cancelled upload');

  const after = listFiles(dataDir);
  assert.deepEqual(added(baseline, after), [], 'no new file in the data folder after the cancel');
  for (const p of staged) assert.ok(!after.has(p), `${p} was removed`);
  assert.equal(await rowState(page, 'kept.bin'), 'done', 'the finished upload is untouched');
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
