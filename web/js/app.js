// The page: wires the pickers, the queue and the file list together.

import * as auth from './auth.js';
import { setupAuth } from './auth-view.js';
import * as i18n from './i18n.js';
import { t } from './i18n.js';
import { fromInput, setupDrop, setupPaste } from './picker.js';
import { setupPreview } from './preview.js';
import { FilesView } from './files-view.js';
import { Queue } from './queue.js';
import { QueueView } from './queue-view.js';
import { toast } from './toast.js';

const $ = (id) => document.getElementById(id);

i18n.start();
const lang = $('lang');
lang.value = i18n.language();
lang.addEventListener('change', () => i18n.setLanguage(lang.value));

const queue = new Queue();
const files = new FilesView({ list: $('files'), search: $('file-search'), refresh: $('refresh-files'), more: $('more-files'), empty: $('files-empty') });

let reselecting = null;
new QueueView(queue, {
  container: $('queue'),
  total: $('total-progress'),
  status: $('total-status'),
  empty: $('queue-empty'),
  onReselect(item) {
    reselecting = item;
    $('pick-one').click();
  },
});

function add(entries) {
  if (!entries.length) return;
  toast(t('add.added', { count: entries.length }));
  queue.add(entries).then(banner);
}

// ---- adding files ----
$('choose-files').addEventListener('click', () => $('pick-files').click());
$('choose-folder').addEventListener('click', () => $('pick-folder').click());
for (const id of ['pick-files', 'pick-folder']) {
  $(id).addEventListener('change', (e) => {
    add(fromInput(e.target));
    e.target.value = '';
  });
}
$('pick-one').addEventListener('change', (e) => {
  const file = e.target.files[0];
  e.target.value = '';
  if (!file || !reselecting) return;
  if (!queue.attach(reselecting, file)) toast(t('resume.mismatch', { name: file.name }));
  reselecting = null;
  banner();
});
setupDrop($('drop-zone'), add, () => toast(t('add.reading')));
setupPaste(add);

// ---- queue-wide buttons ----
$('pause-all').addEventListener('click', () => queue.pauseAll());
$('resume-all').addEventListener('click', () => queue.resumeAll());
$('cancel-all').addEventListener('click', () => {
  const count = queue.items.filter((i) => !i.finished).length;
  if (count && window.confirm(t('queue.confirmCancel', { count }))) queue.cancelAll();
  banner();
});
$('clear-done').addEventListener('click', () => queue.clearFinished());

// ---- resuming after a reload ----
function banner() {
  const waiting = queue.waitingForFiles.length;
  $('resume-banner').hidden = waiting === 0;
  $('resume-text').textContent = t('resume.text', { count: waiting });
}
i18n.onLanguage(banner);
$('resume-select').addEventListener('click', () => $('pick-files').click());
$('resume-forget').addEventListener('click', () => {
  for (const item of queue.waitingForFiles) queue.cancel(item);
  banner();
});

// ---- the file list follows finished uploads ----
let refresh = 0;
queue.addEventListener('change', (e) => {
  if (!e.detail.finished) return;
  clearTimeout(refresh);
  refresh = setTimeout(() => files.load(), 300);
});

window.addEventListener('beforeunload', (e) => {
  if (queue.totals().active) e.preventDefault();
});

// ---- the token (servers with tokens) ----
setupAuth({
  panel: $('auth'),
  text: $('auth-text'),
  form: $('auth-form'),
  input: $('auth-token'),
  submit: $('auth-submit'),
  error: $('auth-error'),
  signOut: $('sign-out'),
  onSignOut() {
    // The list was this token's owner's: it goes, and loading it again
    // asks for a token.
    files.clear();
    files.load();
  },
});
auth.onChange(() => queue.changed());

setupPreview();
files.load();
queue.restore().then(banner);
