// The list of files on the server: search by name, download, copy link,
// preview and delete. Refreshed after uploads finish.

import * as api from './api.js';
import * as auth from './auth.js';
import { formatBytes, formatDate, onLanguage, t } from './i18n.js';
import { canPreview, showPreview } from './preview.js';
import { toast } from './toast.js';

const PAGE = 100;

export class FilesView {
  constructor({ list, search, refresh, more, empty }) {
    this.list = list;
    this.search = search;
    this.more = more;
    this.empty = empty;
    this.files = [];
    this.cursor = null;
    this.loading = 0;
    let timer = 0;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.load(), 250);
    });
    refresh.addEventListener('click', () => this.load());
    more.addEventListener('click', () => this.load(this.cursor));
    list.addEventListener('click', (e) => this.click(e));
    onLanguage(() => this.draw());
    // Asked for a token: say why the list is empty. Signed in: the list
    // of the token's owner.
    auth.onChange(() => {
      if (auth.asked()) this.draw();
      else if (auth.token()) this.load();
    });
  }

  /** Loads the first page (or the page at `cursor`, appended). */
  async load(cursor = null) {
    const ticket = ++this.loading;
    try {
      const page = await api.listFiles({ q: this.search.value.trim(), cursor, limit: PAGE });
      if (ticket !== this.loading) return;
      this.files = cursor ? this.files.concat(page.files) : page.files;
      this.cursor = page.next_cursor;
      this.draw();
    } catch (err) {
      if (ticket !== this.loading) return;
      this.empty.hidden = false;
      this.empty.textContent = t('files.loadFailed', { reason: err.message });
    }
  }

  /** Empties the list (after signing out); a load under way is dropped. */
  clear() {
    this.loading++;
    this.files = [];
    this.cursor = null;
    this.draw();
  }

  draw() {
    const query = this.search.value.trim();
    this.empty.hidden = this.files.length > 0;
    this.empty.textContent = auth.asked() && !this.files.length ? t('files.signIn') : query ? t('files.noMatch', { query }) : t('files.empty');
    this.more.hidden = !this.cursor;
    const focusedId = document.activeElement && this.list.contains(document.activeElement) ? document.activeElement.closest('.file').dataset.id : null;
    const focusedAction = focusedId && document.activeElement.dataset.action;
    this.list.replaceChildren(...this.files.map((f) => this.row(f)));
    if (focusedId) {
      const again = this.list.querySelector(`.file[data-id="${focusedId}"] [data-action="${focusedAction}"]`);
      if (again) again.focus();
    }
  }

  row(file) {
    const li = document.createElement('li');
    li.className = 'file';
    li.dataset.id = file.id;
    li.dataset.name = file.name;
    const main = document.createElement('div');
    main.className = 'file-main';
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = file.name;
    name.title = file.name;
    const meta = document.createElement('span');
    meta.className = 'file-meta';
    meta.textContent = `${formatBytes(file.size)} · ${formatDate(file.created_at)}`;
    main.append(name, meta);

    const actions = document.createElement('div');
    actions.className = 'file-actions';
    const label = (action) => t('action.label', { action: t(`files.${action}`), name: file.name });
    if (canPreview(file.mime)) actions.append(button('preview', t('files.preview'), label('preview')));
    const link = document.createElement('a');
    link.className = 'button';
    link.dataset.action = 'download';
    link.href = file.url;
    link.download = file.name.split('/').pop();
    link.textContent = t('files.download');
    link.setAttribute('aria-label', label('download'));
    actions.append(link, button('copy', t('files.copy'), label('copy')), button('delete', t('files.delete'), label('delete')));
    li.append(main, actions);
    return li;
  }

  async click(event) {
    const target = event.target.closest('button[data-action]');
    const row = target && target.closest('.file');
    const file = row && this.files.find((f) => f.id === row.dataset.id);
    if (!file) return;
    const action = target.dataset.action;
    if (action === 'preview') showPreview(file, target);
    else if (action === 'copy') copyLink(file);
    else if (action === 'delete') {
      if (!window.confirm(t('files.confirmDelete', { name: file.name }))) return;
      try {
        await api.deleteFile(file.id);
        toast(t('files.deleted', { name: file.name }));
      } catch (err) {
        toast(err.message);
      }
      this.files = this.files.filter((f) => f.id !== file.id);
      this.draw();
      this.load();
    }
  }
}

function button(action, text, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  b.textContent = text;
  b.setAttribute('aria-label', label);
  return b;
}

async function copyLink(file) {
  const url = new URL(file.url, location.href).href;
  try {
    // The Clipboard API exists only in secure contexts.
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(url);
    // A signed link (servers with tokens) works for a while only.
    const expires = Number(new URL(url).searchParams.get('expires'));
    toast(expires > 0 ? t('files.copiedUntil', { date: formatDate(new Date(expires * 1000).toISOString()) }) : t('files.copied'));
  } catch {
    toast(t('files.copyFailed', { url }));
  }
}
