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

test('cancelling while the server is answering the check still leaves nothing', { timeout: 600_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const name = 'cancel-early.bin';
  const file = makeFile(s.files, name, 9 * MiB);

  // Hold the check (POST /api/v1/uploads) until the row was cancelled; then
  // let it reach the server, which makes an upload the page has not heard of.
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  let made = null;
  await page.route('**/api/v1/uploads', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    await released;
    const response = await route.fetch();
    const body = await response.json();
    made = body.upload ? body.upload.id : null;
    await route.fulfill({ response, json: body });
  });
  await page.setInputFiles('#pick-files', file);
  await waitForState(page, name, 'checking', { timeout: TIMEOUT.upload });
  await row(page, name).locator('button[data-action=cancel]').click();
  await waitForState(page, name, 'cancelled', { failOn: [] });
  release();

  await poll(() => made, (id) => id !== null, { message: 'the held check reached the server' });
  const gone = await poll(
    () => s.api.upload(made),
    (r) => r.status === 410,
    { timeout: TIMEOUT.step, message: `the upload the check made (${made}) to be deleted` },
  );
  assert.equal(gone.body.error.reason, 'terminated');
  assert.deepEqual(await s.api.files(), [], 'no file recorded');
  assert.equal(s.chunkPuts.length, 0, 'no chunk was sent');
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
