// The files list: search by name, the download link, and delete (asked
// with window.confirm: dismissing keeps the file, accepting deletes it).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { poll, q, session } from './harness.mjs';

test('the files list searches by name, links downloads and deletes after confirm', { timeout: 300_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  // Two files, posted straight to the API (multipart), then shown by the page.
  const form = new FormData();
  form.append('file', new Blob(['alpha bytes']), 'reports/alpha.txt');
  form.append('file', new Blob(['beta bytes']), 'beta.txt');
  const res = await fetch(s.server.url + '/api/v1/files', { method: 'POST', body: form });
  assert.equal(res.status, 201);
  const [alpha, beta] = (await res.json()).files;
  await page.reload();

  const fileRow = (f) => page.locator(`#files .file[data-id=${q(f.id)}]`);
  await fileRow(alpha).waitFor({ state: 'visible' });
  await fileRow(beta).waitFor({ state: 'visible' });
  assert.equal(await fileRow(alpha).getAttribute('data-name'), 'reports/alpha.txt');
  const href = await fileRow(alpha).locator('a[data-action=download]').getAttribute('href');
  assert.equal(new URL(href, s.server.url).pathname, alpha.url, 'the download link is the file url');

  await page.fill('#file-search', 'ALPHA');
  await fileRow(beta).waitFor({ state: 'detached' });
  assert.equal(await page.locator('#files .file').count(), 1, 'one match');
  await fileRow(alpha).waitFor({ state: 'visible' });
  await page.fill('#file-search', '');
  await fileRow(beta).waitFor({ state: 'visible' });

  // Dismissed: nothing happens (counted at the end: one DELETE in all).
  const deletes = [];
  page.on('request', (r) => {
    if (r.method() === 'DELETE') deletes.push(r.url());
  });
  const asked = [];
  page.once('dialog', (d) => {
    asked.push(d.type());
    d.dismiss();
  });
  await fileRow(beta).locator('button[data-action=delete]').click();
  await poll(() => asked.length, (n) => n === 1, { message: 'the confirm dialog' });
  assert.deepEqual(asked, ['confirm']);
  assert.equal((await s.api.json('GET', `/api/v1/files/${beta.id}`)).status, 200, 'kept after dismiss');

  // Accepted: deleted on the server and from the list.
  page.once('dialog', (d) => d.accept());
  await fileRow(beta).locator('button[data-action=delete]').click();
  await fileRow(beta).waitFor({ state: 'detached' });
  await poll(() => s.api.json('GET', `/api/v1/files/${beta.id}`), (r) => r.status === 404, { message: 'the file to be deleted' });
  assert.deepEqual((await s.api.files()).map((f) => f.id), [alpha.id]);
  assert.deepEqual(deletes.map((u) => new URL(u).pathname), [`/api/v1/files/${beta.id}`], 'one DELETE, after the accepted confirm');
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
