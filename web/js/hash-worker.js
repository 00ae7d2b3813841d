// A hashing worker: SHA-256 of one slice of a file, or of given bytes.
// Several run in parallel (see hash.js); each holds only the slices it is
// hashing at the moment.

import { sha256 } from './sha256.js';

const subtle = self.crypto && self.crypto.subtle;

async function digest(buffer) {
  if (subtle) return new Uint8Array(await subtle.digest('SHA-256', buffer));
  return sha256(new Uint8Array(buffer));
}

self.onmessage = async (event) => {
  const { id, file, start, end, bytes } = event.data;
  try {
    const buffer = bytes || (await file.slice(start, end).arrayBuffer());
    const result = await digest(buffer);
    self.postMessage({ id, digest: result }, [result.buffer]);
  } catch (err) {
    self.postMessage({ id, error: (err && (err.name === 'NotReadableError' ? 'unreadable' : err.message)) || String(err) });
  }
};
