// Ways files come in: the file and folder pickers, drag and drop of files
// and whole folders, and paste. Each yields `{ file, name }` with the
// relative path kept in the name.

/** Files from an <input type=file>, with the folder path if there is one. */
export function fromInput(input) {
  return Array.from(input.files, (file) => ({ file, name: file.webkitRelativePath || file.name }));
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, out) {
  if (entry.isFile) {
    out.push({ file: await fileOf(entry), name: entry.fullPath.replace(/^\/+/, '') });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries hands out a folder's entries in batches (100 at a time
    // in Chromium) and an empty batch at the end.
    for (;;) {
      const batch = await readBatch(reader);
      if (!batch.length) break;
      for (const child of batch) await walk(child, out);
    }
  }
}

/**
 * The files of a drop, folders read recursively. The entries must be taken
 * while the drop event runs, so call this synchronously from the handler.
 */
export function fromDrop(dataTransfer) {
  const items = Array.from(dataTransfer.items || []).filter((i) => i.kind === 'file');
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!entries.length || entries.some((e) => !e)) {
    const files = Array.from(dataTransfer.files || [], (file) => ({ file, name: file.name }));
    return Promise.resolve(files);
  }
  return (async () => {
    const out = [];
    for (const entry of entries) await walk(entry, out);
    return out;
  })();
}

/** Drops anywhere on the page; the zone lights up while something is over it. */
export function setupDrop(zone, onFiles, onReading) {
  let depth = 0;
  const hasFiles = (e) => Array.from(e.dataTransfer ? e.dataTransfer.types : []).includes('Files');
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    zone.classList.add('over');
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove('over');
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('drop', async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('over');
    const reading = fromDrop(e.dataTransfer);
    onReading();
    onFiles(await reading);
  });
}

export function setupPaste(onFiles) {
  document.addEventListener('paste', (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (!files.length) return;
    e.preventDefault();
    onFiles(files.map((file) => ({ file, name: file.name })));
  });
}
