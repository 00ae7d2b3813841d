// Previews in a dialog: images, video, audio, PDF and text. Media play
// from the download URL with `inline=1` added, which the server honours
// only for types a browser shows safely. The URL is the file's `url` as
// the server gave it (a signed link where the server has tokens), so no
// token is needed.

import { formatBytes, t } from './i18n.js';

/** Text previews read only the start of a file. */
const TEXT_LIMIT = 256 * 1024;

const TEXT = /^(text\/|application\/(json|xml|javascript|x-sh|x-yaml|yaml|toml|sql|csv))/;

function kind(mime) {
  const m = (mime || '').split(';')[0].trim().toLowerCase();
  if (m.startsWith('image/')) return 'image';
  if (m.startsWith('video/')) return 'video';
  if (m.startsWith('audio/')) return 'audio';
  if (m === 'application/pdf') return 'pdf';
  if (TEXT.test(m)) return 'text';
  return null;
}

/** The file's URL with `inline=1` added to its query (a signed link
 * already has one: `?expires=…&sig=…`). */
export function inlineUrl(url) {
  const u = new URL(url, location.href);
  u.searchParams.set('inline', '1');
  return u.origin === location.origin ? u.pathname + u.search : u.href;
}

export function canPreview(mime) {
  return kind(mime) !== null;
}

let opener = null;

export function showPreview(file, from) {
  const dialog = document.getElementById('preview');
  const body = document.getElementById('preview-body');
  document.getElementById('preview-title').textContent = file.name;
  opener = from;
  const inline = inlineUrl(file.url);
  const k = kind(file.mime);
  let el;
  if (k === 'image') {
    el = document.createElement('img');
    el.src = inline;
    el.alt = file.name;
  } else if (k === 'video' || k === 'audio') {
    el = document.createElement(k);
    el.controls = true;
    el.preload = 'metadata';
    el.src = inline;
  } else if (k === 'pdf') {
    el = document.createElement('iframe');
    el.src = inline;
    el.title = file.name;
  } else {
    el = document.createElement('pre');
    el.tabIndex = 0;
    loadText(file, el);
  }
  el.classList.add('preview-item');
  el.addEventListener('error', () => body.replaceChildren(message(t('preview.failed'))));
  body.replaceChildren(el);
  dialog.showModal();
}

async function loadText(file, pre) {
  try {
    const res = await fetch(file.url, { headers: { range: `bytes=0-${TEXT_LIMIT - 1}` } });
    if (!res.ok) throw new Error(String(res.status));
    const bytes = new Uint8Array(await res.arrayBuffer());
    pre.textContent = new TextDecoder('utf-8').decode(bytes);
    if (file.size > TEXT_LIMIT) pre.after(message(t('preview.truncated', { size: formatBytes(TEXT_LIMIT) })));
  } catch {
    pre.replaceWith(message(t('preview.failed')));
  }
}

function message(text) {
  const p = document.createElement('p');
  p.className = 'preview-note';
  p.textContent = text;
  return p;
}

export function setupPreview() {
  const dialog = document.getElementById('preview');
  document.getElementById('preview-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) dialog.close();
  });
  dialog.addEventListener('close', () => {
    // Stops playback and frees the media.
    document.getElementById('preview-body').replaceChildren();
    if (opener && opener.isConnected) opener.focus();
  });
}
