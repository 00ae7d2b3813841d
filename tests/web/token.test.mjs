// Bearer tokens: on a server with tokens the page asks for one, refuses a
// wrong one with a message, sends the right one on every API request, keeps
// it in the tab's sessionStorage (a reload keeps it, a new tab asks again),
// forgets it on sign out, and asks again when the token is revoked.
// Uploads that met a 401 wait for the token and then finish.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import {
  MiB, TIMEOUT, assertStored, makeFile, poll, q, row, session, tokenCommand, waitForState,
} from './harness.mjs';

const WRONG = `tusk_${'0'.repeat(64)}`;

/** Every API request the page makes, with its Authorization header and answer. */
function watchApi(page) {
  const seen = [];
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/api/')) return;
    seen.push({ method: r.request().method(), path: url.pathname, status: r.status(), auth: r.request().headers().authorization ?? null });
  });
  return seen;
}

async function tabStorage(page) {
  return page.evaluate(() => ({
    token: sessionStorage.getItem('tusk.token'),
    local: Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`),
  }));
}

async function signIn(page, token, { enter = false } = {}) {
  await page.fill('#auth-token', token);
  if (enter) await page.press('#auth-token', 'Enter');
  else await page.click('#auth-submit');
}

test('with tokens, the page asks for one, refuses a wrong one, uploads and downloads with it, and keeps it for this tab only', { timeout: 600_000 }, async (t) => {
  const s = await session(t, { tokens: ['ann'] });
  const { page } = s;
  const token = s.tokens.ann;
  const seen = watchApi(page);

  // The file list was refused (401): the page asks for a token.
  await page.locator('#auth').waitFor({ state: 'visible' });
  assert.match(await page.locator('#auth-text').innerText(), /needs an access token/);
  assert.equal(await page.locator('#sign-out').isVisible(), false, 'no sign out without a token');
  assert.equal((await tabStorage(page)).token, null);

  // A file chosen now is hashed, then its check meets a 401 and waits.
  const name = 'with-token.bin';
  const file = makeFile(s.files, name, 6 * MiB + 5);
  await page.setInputFiles('#pick-files', file);
  await waitForState(page, name, 'checking', { timeout: TIMEOUT.upload });
  await poll(
    () => seen.filter((r) => r.method === 'POST' && r.path === '/api/v1/uploads' && r.status === 401).length,
    (n) => n >= 1,
    { message: 'the check to be refused with 401' },
  );
  await page.waitForFunction((name) => {
    const el = [...document.querySelectorAll('#queue .item')].find((e) => e.dataset.name === name);
    return el && /waiting for an access token/i.test(el.innerText);
  }, name);

  // Not a token at all: said so without asking the server.
  await signIn(page, 'not a token');
  await page.locator('#auth-error').waitFor({ state: 'visible' });
  assert.match(await page.locator('#auth-error').innerText(), /not a token/i);

  // A wrong token: the server refuses it, the page says so and keeps asking.
  await signIn(page, WRONG);
  await page.waitForFunction(() => /refused this token/i.test(document.querySelector('#auth-error').textContent));
  assert.equal(await page.locator('#auth-error').isVisible(), true);
  assert.equal(await page.locator('#auth').isVisible(), true, 'still asking');
  assert.equal(await page.locator('#auth-token').getAttribute('aria-invalid'), 'true');
  assert.equal((await tabStorage(page)).token, null, 'a refused token is not kept');
  assert.equal(await row(page, name).getAttribute('data-state'), 'checking', 'the upload still waits (it did not fail)');

  // The right token (pasted with spaces around it, sent with Enter): the
  // prompt goes, and the waiting upload goes on by itself.
  await signIn(page, `  ${token}\n`, { enter: true });
  await page.locator('#auth').waitFor({ state: 'hidden' });
  await page.locator('#sign-out').waitFor({ state: 'visible' });
  await waitForState(page, name, 'done', { timeout: TIMEOUT.upload });
  const stored = await assertStored(s, name, file);
  assert.match(stored.url, /^\/files\/[0-9a-f]{32}\/[^?]+\?expires=\d+&sig=[0-9a-f]+$/, 'the file url is a signed link');

  // It is in the list; its download link is the signed url and gives the bytes.
  const fileRow = page.locator(`#files .file[data-name=${q(name)}]`);
  await fileRow.waitFor({ state: 'visible' });
  const link = fileRow.locator('a[data-action=download]');
  const href = await link.getAttribute('href');
  assert.match(href, /[?&]sig=[0-9a-f]+/, `the download link is signed: ${href}`);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const saved = await download.path();
  assert.ok(fs.readFileSync(saved).equals(fs.readFileSync(file)), 'the downloaded bytes equal the original');

  // Every API request the server answered (other than with 401) carried the
  // token, and the wrong one was refused.
  const answered = seen.filter((r) => r.status !== 401);
  assert.ok(answered.some((r) => r.method === 'PUT'), 'chunks were sent');
  for (const r of answered) assert.equal(r.auth, `Bearer ${token}`, `${r.method} ${r.path} (${r.status}) carried the token`);
  assert.ok(seen.some((r) => r.status === 401 && r.auth === `Bearer ${WRONG}`), 'the wrong token was tried and refused');

  // Kept in the tab's sessionStorage, not in localStorage.
  const kept = await tabStorage(page);
  assert.equal(kept.token, token, 'the token is in sessionStorage');
  assert.ok(!kept.local.some((v) => v.includes(token)), `the token is not in localStorage: ${JSON.stringify(kept.local)}`);

  // A reload keeps it: the list loads with no prompt and no 401.
  const atReload = seen.length;
  await page.reload();
  await page.locator(`#files .file[data-name=${q(name)}]`).waitFor({ state: 'visible' });
  assert.equal(await page.locator('#auth').isVisible(), false, 'no prompt after a reload');
  assert.deepEqual(seen.slice(atReload).filter((r) => r.status === 401), [], 'no 401 after the reload');

  // A new tab (a new browser context) has no token: it asks again, in Chinese here.
  const other = await s.browser.newContext({ locale: 'zh-CN' });
  try {
    const tab = await other.newPage();
    await tab.goto(s.server.url + '/');
    await tab.locator('#auth').waitFor({ state: 'visible' });
    assert.equal(await tab.locator('#auth-title').innerText(), '访问令牌');
    assert.match(await tab.locator('#auth-submit').innerText(), /登录/);
    assert.equal(await tab.locator('#files .file').count(), 0, 'no files shown without a token');
    assert.equal(await tab.locator('#files-empty').innerText(), '请用令牌登录以查看文件。');
    assert.equal((await tabStorage(tab)).token, null);
  } finally {
    await other.close();
  }

  // Sign out: the token is forgotten, the list is emptied, the prompt is back.
  await page.click('#sign-out');
  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.locator('#files .file').first().waitFor({ state: 'detached' });
  assert.equal((await tabStorage(page)).token, null, 'sessionStorage forgot the token');
  assert.equal(await page.locator('#sign-out').isVisible(), false);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('a revoked token is asked for again, and another token takes over', { timeout: 300_000 }, async (t) => {
  const s = await session(t, { tokens: ['ann', 'bob'] });
  const { page } = s;
  const mine = await s.apiAs('bob').uploadBytes('bobs.txt', Buffer.from('bob was here'));

  await page.locator('#auth').waitFor({ state: 'visible' });
  await signIn(page, s.tokens.ann);
  await page.locator('#auth').waitFor({ state: 'hidden' });
  await page.waitForFunction(() => document.querySelector('#files-empty').textContent === 'No files yet.');
  assert.equal(await page.locator('#files .file').count(), 0, "ann does not see bob's file");

  // Revoked beside the running server: the next request is refused.
  tokenCommand(s.server.dataDir, 'revoke', 'ann');
  await page.click('#refresh-files');
  await page.locator('#auth').waitFor({ state: 'visible' });
  assert.match(await page.locator('#auth-text').innerText(), /no longer accepts/);
  assert.equal((await tabStorage(page)).token, null, 'the refused token was dropped');

  // Another token: the refused request goes on with it.
  await signIn(page, s.tokens.bob);
  await page.locator(`#files .file[data-id=${q(mine.id)}]`).waitFor({ state: 'visible' });
  assert.equal(await page.locator('#auth').isVisible(), false);
  assert.equal((await tabStorage(page)).token, s.tokens.bob);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('previews and copied links use the signed file url, with no token', { timeout: 300_000 }, async (t) => {
  const s = await session(t, { tokens: ['ann'] });
  const { page } = s;
  // A 1×1 PNG and a text file, uploaded through the API.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  const image = await s.api.uploadBytes('dot.png', png, 'image/png');
  const text = await s.api.uploadBytes('notes.txt', Buffer.from('hello from a signed link\n'), 'text/plain');

  await page.locator('#auth').waitFor({ state: 'visible' });
  await signIn(page, s.tokens.ann);
  const fileRow = (f) => page.locator(`#files .file[data-id=${q(f.id)}]`);
  await fileRow(image).waitFor({ state: 'visible' });

  // The image preview loads from the signed url with inline=1 added to its query.
  await fileRow(image).locator('button[data-action=preview]').click();
  const img = page.locator('#preview-body img');
  await img.waitFor({ state: 'attached' });
  await page.waitForFunction(() => {
    const el = document.querySelector('#preview-body img');
    return el && el.complete && el.naturalWidth === 1;
  });
  const src = new URL(await img.getAttribute('src'), s.server.url);
  assert.equal(src.searchParams.get('inline'), '1');
  assert.match(src.searchParams.get('sig') ?? '', /^[0-9a-f]+$/, `the preview is a signed link: ${src}`);
  await page.click('#preview-close');

  // The text preview reads the signed url too.
  await fileRow(text).locator('button[data-action=preview]').click();
  await page.waitForFunction(() => document.querySelector('#preview-body pre')?.textContent === 'hello from a signed link\n');
  await page.click('#preview-close');

  // A copied link is the signed url, usable without a token.
  await s.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.server.url });
  await fileRow(text).locator('button[data-action=copy]').click();
  await page.waitForFunction(() => /link copied/i.test(document.querySelector('#toast').textContent));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const link = new URL(copied);
  assert.equal(link.origin + link.pathname, `${s.server.url}/files/${text.id}/notes.txt`);
  assert.match(link.search, /^\?expires=\d+&sig=[0-9a-f]+$/, `the copied link is signed: ${copied}`);
  const res = await fetch(copied);
  assert.equal(res.status, 200, 'the copied link works without a token');
  assert.equal(await res.text(), 'hello from a signed link\n');
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
