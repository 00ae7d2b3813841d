// The page's modules that run without a browser: the JavaScript SHA-256
// used where WebCrypto is missing, and the two languages' strings.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import test from 'node:test';

import { sha256 } from '../../web/js/sha256.js';
import { STRINGS } from '../../web/js/i18n.js';

test('the fallback SHA-256 agrees with OpenSSL at every padding boundary', () => {
  for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 4 * 1024 * 1024 + 3]) {
    const bytes = randomBytes(n);
    const ours = Buffer.from(sha256(new Uint8Array(bytes))).toString('hex');
    assert.equal(ours, createHash('sha256').update(bytes).digest('hex'), `length ${n}`);
  }
  // A view into a larger buffer hashes only its own bytes.
  const big = randomBytes(300);
  const view = new Uint8Array(big.buffer, big.byteOffset + 7, 200);
  assert.equal(Buffer.from(sha256(view)).toString('hex'), createHash('sha256').update(view).digest('hex'));
});

test('both languages have every string, with the same placeholders', () => {
  const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  const en = STRINGS.en;
  const zh = STRINGS['zh-CN'];
  for (const key of Object.keys(en)) {
    if (key.endsWith('.one')) continue;
    assert.ok(key in zh, `zh-CN lacks ${key}`);
    assert.deepEqual(placeholders(zh[key]), placeholders(en[key]), key);
  }
  for (const key of Object.keys(zh)) assert.ok(key in en, `en lacks ${key}`);
});
