// A queue of 2,000 files: only the rows in view exist in the page, scrolling
// brings the others, and every file arrives.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { poll, q, row, session } from './harness.mjs';

const COUNT = 2000;

test('2,000 files: the queue draws only what is in view, and all of them arrive', { timeout: 900_000 }, async (t) => {
  const s = await session(t);
  const { page } = s;
  const paths = [];
  for (let i = 0; i < COUNT; i++) {
    const p = path.join(s.files, `n${String(i).padStart(4, '0')}.txt`);
    fs.writeFileSync(p, `file ${i} of ${COUNT}, made by the queue test\n`);
    paths.push(p);
  }
  await page.setInputFiles('#pick-files', paths);

  // Every file is in the queue, but only a screenful of rows is in the DOM.
  await page.waitForFunction((n) => document.querySelector('.item[aria-setsize]')?.getAttribute('aria-setsize') === String(n), COUNT);
  const drawn = await page.locator('#queue .item').count();
  assert.ok(drawn > 0 && drawn <= 60, `rows in the DOM: ${drawn}`);
  await row(page, 'n0000.txt').waitFor({ state: 'attached' });
  assert.equal(await page.locator(`#queue .item[data-name=${q('n1999.txt')}]`).count(), 0, 'the last row is not drawn yet');

  // Scrolling to the end draws the last rows and drops the first ones.
  await page.locator('#queue').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await row(page, 'n1999.txt').waitFor({ state: 'attached' });
  assert.equal(await page.locator(`#queue .item[data-name=${q('n0000.txt')}]`).count(), 0, 'the first row left the DOM');
  assert.ok((await page.locator('#queue .item').count()) <= 60);

  // Everything arrives; the total line says so.
  await page.waitForFunction((n) => document.getElementById('total-status').textContent.includes(`All ${n} files uploaded`), COUNT, { timeout: 800_000, polling: 500 });
  const files = await poll(() => s.api.files(), (f) => f.length === COUNT, { message: `${COUNT} files on the server` });
  const names = new Set(files.map((f) => f.name));
  for (let i = 0; i < COUNT; i += 97) assert.ok(names.has(`n${String(i).padStart(4, '0')}.txt`), `file ${i} listed`);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});
