// Proof of possession: content another owner already uploaded is an
// instant upload once the page proves it holds the bytes (SHA-256 of the
// challenge's nonce and blocks): no chunk is sent. The page proves only
// where it pays (files above 16 MiB, nothing sent yet), and a proof that
// fails just means uploading as usual.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { BLOCK, MiB, TIMEOUT, assertStored, row, session, waitForState } from './harness.mjs';

/**
 * Records the page's checks (with the server's answers) and proofs;
 * `settled()` resolves to `{checks, proofs}` once every answer was read.
 */
function watchProofs(page) {
  const pending = [];
  page.on('response', (r) => {
    const { pathname } = new URL(r.url());
    if (r.request().method() !== 'POST') return;
    if (pathname === '/api/v1/uploads' && r.status() < 300) {
      pending.push(r.json().then((answer) => ({ kind: 'check', claim: r.request().postDataJSON(), answer })));
    }
    const m = /^\/api\/v1\/uploads\/([0-9a-f]{32})\/proof$/.exec(pathname);
    if (m) {
      pending.push(r.json().then((answer) => ({ kind: 'proof', id: m[1], sent: r.request().postDataJSON(), status: r.status(), answer })));
    }
  });
  return {
    async settled() {
      const all = await Promise.all(pending);
      return { checks: all.filter((e) => e.kind === 'check'), proofs: all.filter((e) => e.kind === 'proof') };
    },
  };
}

/** SHA-256(nonce ‖ block i) for each block of the challenge, as the server wants them. */
function expectedDigests(bytes, { nonce, blocks }) {
  return blocks.map((i) =>
    createHash('sha256').update(Buffer.from(nonce, 'hex')).update(bytes.subarray(i * BLOCK, (i + 1) * BLOCK)).digest('hex'),
  );
}

test("bob's page proves it holds a file ann uploaded: an instant upload, no chunk sent", { timeout: 600_000 }, async (t) => {
  const s = await session(t, { tokens: ['ann', 'bob'] });
  const { page } = s;
  const ann = s.apiAs('ann');
  const bob = s.apiAs('bob');
  const watch = watchProofs(page);

  // Ann uploads 20 MiB of random bytes through the JSON API.
  const bytes = randomBytes(20 * MiB);
  const name = 'shared.bin';
  const local = path.join(s.files, name);
  fs.writeFileSync(local, bytes);
  const annFile = await ann.uploadBytes('anns-copy.bin', bytes);
  assert.equal(annFile.size, bytes.length);

  // Bob signs in on the page and selects the same bytes.
  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.fill('#auth-token', s.tokens.bob);
  await page.click('#auth-submit');
  await page.locator('#auth').waitFor({ state: 'hidden' });
  await page.setInputFiles('#pick-files', local);
  await waitForState(page, name, 'done', { timeout: TIMEOUT.upload });

  assert.equal(await row(page, name).getAttribute('data-instant'), 'true', 'an instant upload');
  assert.match(await row(page, name).innerText(), /instant/i);
  assert.deepEqual(s.chunkPuts, [], 'no chunk PUT was sent');
  // One check (it answered a challenge), one proof with the right digests.
  const { checks, proofs } = await watch.settled();
  assert.equal(checks.length, 1, 'one check');
  const { answer } = checks[0];
  assert.equal(answer.status, 'uploading');
  assert.match(answer.challenge.nonce, /^[0-9a-f]{32}$/);
  assert.equal(proofs.length, 1, 'one proof');
  assert.equal(proofs[0].id, answer.upload.id);
  assert.deepEqual(proofs[0].sent, { digests: expectedDigests(bytes, answer.challenge) });
  assert.equal(proofs[0].answer.status, 'complete');

  // Bob now has his own file with those bytes; ann's is untouched.
  const bobFile = await assertStored({ api: bob }, name, local);
  assert.notEqual(bobFile.id, annFile.id);
  assert.deepEqual((await ann.files()).map((f) => f.id), [annFile.id], 'ann still has just her file');
  assert.ok((await bob.download(bobFile.url)).equals(bytes), "bob's file downloads byte for byte");
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('a failed proof uploads as usual, and small files are not proven', { timeout: 600_000 }, async (t) => {
  const s = await session(t, { tokens: ['ann', 'bob'] });
  const { page } = s;
  const watch = watchProofs(page);

  // Ann holds a small file; bob's page sends it as chunks (no proof below 16 MiB).
  const small = randomBytes(5 * MiB);
  const smallPath = path.join(s.files, 'small.bin');
  fs.writeFileSync(smallPath, small);
  await s.apiAs('ann').uploadBytes('small.bin', small);
  // Nobody holds this one: the proof fails, the chunks go up.
  const fresh = path.join(s.files, 'fresh.bin');
  fs.writeFileSync(fresh, randomBytes(17 * MiB));

  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.fill('#auth-token', s.tokens.bob);
  await page.click('#auth-submit');
  await page.locator('#auth').waitFor({ state: 'hidden' });
  await page.setInputFiles('#pick-files', [smallPath, fresh]);
  await waitForState(page, 'small.bin', 'done', { timeout: TIMEOUT.upload });
  await waitForState(page, 'fresh.bin', 'done', { timeout: TIMEOUT.upload });

  const bob = s.apiAs('bob');
  for (const name of ['small.bin', 'fresh.bin']) {
    assert.notEqual(await row(page, name).getAttribute('data-instant'), 'true', `${name} is not an instant upload`);
  }
  const smallId = await row(page, 'small.bin').getAttribute('data-upload-id');
  const freshId = await row(page, 'fresh.bin').getAttribute('data-upload-id');
  assert.equal(s.chunkPuts.filter((p) => p.id === smallId).length, 2, 'small.bin: two 4 MiB chunks');
  assert.equal(s.chunkPuts.filter((p) => p.id === freshId).length, 5, 'fresh.bin: five 4 MiB chunks');
  const { proofs } = await watch.settled();
  assert.deepEqual(proofs.map((p) => [p.id, p.status, p.answer.status]), [[freshId, 200, 'uploading']], 'one proof, for fresh.bin only, which did not hold');
  await assertStored({ api: bob }, 'small.bin', smallPath);
  await assertStored({ api: bob }, 'fresh.bin', fresh);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
