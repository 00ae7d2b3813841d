// The interface language: Chinese for a zh-CN browser, English on request.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { screenshot, session } from './harness.mjs';

const CJK = /[\u3400-\u9fff]/;

async function texts(page) {
  return page.evaluate(() => ({
    lang: document.documentElement.lang,
    choose: document.querySelector('#choose-files').textContent.trim(),
    folder: document.querySelector('#choose-folder').textContent.trim(),
    select: document.querySelector('#lang').value,
  }));
}

test('a zh-CN browser gets the Chinese interface; #lang switches to English', { timeout: 300_000 }, async (t) => {
  const s = await session(t, { locale: 'zh-CN' });
  const { page } = s;
  assert.equal(await page.evaluate(() => navigator.language), 'zh-CN');

  await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
  await page.locator('#choose-files').filter({ hasText: CJK }).waitFor({ state: 'visible' });
  const zh = await texts(page);
  assert.match(zh.choose, CJK, `#choose-files in Chinese: ${zh.choose}`);
  assert.match(zh.folder, CJK, `#choose-folder in Chinese: ${zh.folder}`);
  assert.equal(zh.select, 'zh-CN', '#lang shows the language in use');
  await screenshot(t, page, 'zh-CN');

  await page.selectOption('#lang', 'en');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  await page.locator('#choose-files').filter({ hasNotText: CJK }).waitFor({ state: 'visible' });
  const en = await texts(page);
  assert.doesNotMatch(en.choose, CJK, `#choose-files in English: ${en.choose}`);
  assert.match(en.choose, /choose/i);
  assert.doesNotMatch(en.folder, CJK, `#choose-folder in English: ${en.folder}`);
  assert.deepEqual(s.pageErrors, [], 'no uncaught errors in the page');
});

test('an en-US browser gets the English interface', { timeout: 300_000 }, async (t) => {
  const s = await session(t, { locale: 'en-US' });
  const { page } = s;
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  const en = await texts(page);
  assert.doesNotMatch(en.choose, CJK, `#choose-files in English: ${en.choose}`);
  assert.match(en.choose, /choose/i);
  assert.equal(en.select, 'en');
});
