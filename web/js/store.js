// The queue's memory across reloads and crashes: one IndexedDB record per
// unfinished upload (what it is, its hash and its server upload id; never
// the bytes). Browsers cannot reopen a file by themselves, so after a reload
// the person selects it again and the record tells what to resume.

const DB = 'tusk';
const STORE = 'queue';

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

async function write(fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, 'readwrite');
    fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** Saves records (plain objects with a `key`), all in one transaction. */
export function save(records) {
  return write((store) => records.forEach((r) => store.put(r))).catch(warn);
}

export function remove(keys) {
  return write((store) => keys.forEach((k) => store.delete(k))).catch(warn);
}

export async function all() {
  try {
    const db = await open();
    return await new Promise((resolve, reject) => {
      const req = db.transaction(STORE).objectStore(STORE).getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } catch (err) {
    warn(err);
    return [];
  }
}

// Without IndexedDB (private modes, quota) uploads still work; only
// resuming after a reload is lost.
function warn(err) {
  console.warn('tusk: the upload queue cannot be kept across reloads:', err);
}
