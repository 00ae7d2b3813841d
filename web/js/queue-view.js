// The queue on screen. Only the rows in view exist in the DOM (a queue can
// hold thousands of files); each row is updated in place, so a focused
// button keeps its focus while its file uploads.

import * as auth from './auth.js';
import { formatBytes, formatDuration, formatPercent, formatSpeed, onLanguage, t } from './i18n.js';

/** Buttons per state, in the order shown. */
const ACTIONS = {
  queued: ['pause', 'cancel'],
  hashing: ['pause', 'cancel'],
  checking: ['pause', 'cancel'],
  uploading: ['pause', 'cancel'],
  completing: ['cancel'],
  paused: ['resume', 'cancel'],
  failed: ['retry', 'cancel'],
  'needs-file': ['reselect', 'cancel'],
  done: ['remove'],
  cancelled: ['remove'],
};

/** Rows drawn beyond the visible ones, above and below. */
const OVERSCAN = 6;

export class QueueView {
  constructor(queue, { container, total, status, empty, onReselect }) {
    this.queue = queue;
    this.container = container;
    this.space = container.querySelector('.queue-space');
    this.total = total;
    this.status = status;
    this.empty = empty;
    this.onReselect = onReselect;
    this.rows = new Map();
    this.scheduled = false;
    this.lastAnnounced = 0;
    this.rowHeight = 0;

    queue.addEventListener('change', () => this.schedule());
    container.addEventListener('scroll', () => this.schedule(), { passive: true });
    window.addEventListener('resize', () => {
      this.rowHeight = 0;
      this.schedule();
    });
    container.addEventListener('click', (e) => this.click(e));
    onLanguage(() => {
      for (const row of this.rows.values()) row.dataset.drawn = '';
      this.announce(true);
      this.schedule();
    });
    // Speeds and times move even when no chunk lands.
    setInterval(() => {
      if (this.queue.totals().active) this.schedule();
    }, 1000);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  click(event) {
    const button = event.target.closest('button[data-action]');
    const row = button && button.closest('.item');
    const item = row && this.queue.find(row.dataset.key);
    if (!item) return;
    const action = button.dataset.action;
    if (action === 'pause') this.queue.pause(item);
    else if (action === 'resume' || action === 'retry') this.queue.resume(item);
    else if (action === 'cancel') this.queue.cancel(item);
    else if (action === 'remove') this.queue.remove(item);
    else if (action === 'reselect') this.onReselect(item);
    // The row's buttons change with its state: keep the keyboard in the row.
    requestAnimationFrame(() => {
      const again = this.rows.get(item.key);
      if (again && !again.contains(document.activeElement)) {
        const first = again.querySelector('button');
        if (first) first.focus();
      }
    });
  }

  render() {
    const items = this.queue.items;
    const now = performance.now();
    for (const item of items) if (item.state === 'uploading' || item.state === 'checking') item.rate.add(item.acked, now);
    this.empty.hidden = items.length > 0;
    this.container.hidden = items.length === 0;
    if (!this.rowHeight) {
      this.rowHeight = parseFloat(getComputedStyle(this.container).getPropertyValue('--row-height')) || 88;
    }
    const height = this.rowHeight;
    this.space.style.height = `${items.length * height}px`;
    const top = this.container.scrollTop;
    const first = Math.max(0, Math.floor(top / height) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((top + this.container.clientHeight) / height) + OVERSCAN);

    const keep = new Set();
    for (let i = first; i < last; i++) {
      const item = items[i];
      keep.add(item.key);
      let row = this.rows.get(item.key);
      if (!row) {
        row = this.createRow(item);
        this.rows.set(item.key, row);
        this.container.append(row);
      }
      row.style.transform = `translateY(${i * height}px)`;
      row.setAttribute('aria-posinset', String(i + 1));
      row.setAttribute('aria-setsize', String(items.length));
      this.update(row, item, now);
    }
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) {
        row.remove();
        this.rows.delete(key);
      }
    }
    this.renderTotal(now);
  }

  createRow(item) {
    const row = document.createElement('div');
    row.className = 'item';
    row.setAttribute('role', 'listitem');
    row.dataset.key = item.key;
    row.dataset.name = item.name;
    row.innerHTML = `
      <div class="item-line">
        <span class="item-name"></span>
        <span class="item-size"></span>
      </div>
      <div class="meter" role="progressbar" aria-valuemin="0" aria-valuemax="100"><span class="fill"></span></div>
      <div class="item-line">
        <span class="item-status"></span>
        <span class="item-rate"></span>
      </div>
      <div class="item-actions"></div>`;
    const name = row.querySelector('.item-name');
    name.textContent = item.name;
    name.title = item.name;
    row.querySelector('.meter').setAttribute('aria-label', item.name);
    return row;
  }

  update(row, item, now) {
    const fraction = progress(item);
    const percent = Math.floor(fraction * 100);
    const meter = row.querySelector('.meter');
    const fill = meter.firstElementChild;
    fill.style.width = `${fraction * 100}%`;
    meter.setAttribute('aria-valuenow', String(percent));
    meter.classList.toggle('hashing', item.state === 'hashing');

    if (row.dataset.state !== item.state || row.dataset.drawn !== item.state) {
      row.dataset.state = item.state;
      row.dataset.drawn = item.state;
      row.querySelector('.item-size').textContent = formatBytes(item.size);
      this.drawActions(row, item);
    }
    if (item.uploadId) row.dataset.uploadId = item.uploadId;
    if (item.instant) row.dataset.instant = 'true';
    row.classList.toggle('error', !!item.error);

    row.querySelector('.item-status').textContent = statusText(item, fraction, now);
    const rate = row.querySelector('.item-rate');
    const speed = item.rate.perSecond;
    if (item.state === 'uploading' && speed > 0) {
      rate.textContent = t('item.speed', { speed: formatSpeed(speed), eta: formatDuration((item.size - item.acked) / speed) });
    } else {
      rate.textContent = '';
    }
  }

  drawActions(row, item) {
    const box = row.querySelector('.item-actions');
    const focused = box.contains(document.activeElement);
    box.replaceChildren();
    for (const action of ACTIONS[item.state] || []) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.action = action;
      b.textContent = t(`action.${action}`);
      b.setAttribute('aria-label', t('action.label', { action: t(`action.${action}`), name: item.name }));
      box.append(b);
    }
    if (focused && box.firstElementChild) box.firstElementChild.focus();
  }

  renderTotal(now) {
    const totals = this.queue.totals();
    this.queue.rate.add(totals.acked, now);
    const fraction = totals.size ? totals.acked / totals.size : totals.count && totals.done === totals.count ? 1 : 0;
    this.total.setAttribute('aria-valuenow', String(Math.floor(fraction * 100)));
    this.total.firstElementChild.style.width = `${fraction * 100}%`;
    this.totals = totals;
    this.announce(false);
  }

  /** The live region speaks at most every few seconds while busy. */
  announce(force) {
    const totals = this.totals || this.queue.totals();
    const now = performance.now();
    if (!force && totals.active && now - this.lastAnnounced < 3000) return;
    this.lastAnnounced = now;
    const speed = this.queue.rate.perSecond;
    let text;
    const vars = { done: totals.done, count: totals.count, failed: totals.failed, acked: formatBytes(totals.acked), size: formatBytes(totals.size) };
    if (totals.count === 0) text = t('total.idle');
    else if (totals.active && speed > 0) text = t('total.busy', { ...vars, speed: formatSpeed(speed), eta: formatDuration((totals.size - totals.acked) / speed) });
    else if (totals.active) text = t('total.busyNoEta', vars);
    else if (totals.failed) text = t('total.attention', vars);
    else if (totals.done === totals.count) text = t('total.done', vars);
    else text = t('total.busyNoEta', vars);
    if (this.status.textContent !== text) this.status.textContent = text;
  }
}

/** States whose requests a 401 holds until a token is entered. */
const WAITS_FOR_SERVER = new Set(['checking', 'uploading', 'completing']);

/** How far along the row's bar is: hashing, then acknowledged bytes. */
function progress(item) {
  if (item.state === 'done') return 1;
  if (item.state === 'hashing') return item.size ? item.hashed / item.size : 0;
  return item.size ? item.acked / item.size : 0;
}

function statusText(item, fraction, now) {
  if (item.retryAt > now) return t('state.retrying', { seconds: Math.ceil((item.retryAt - now) / 1000) });
  if (item.error) return `${t('state.failed')}: ${describe(item.error)}`;
  // Its requests wait for a token (they are sent again once there is one).
  if (auth.asked() && WAITS_FOR_SERVER.has(item.state)) return t('state.waitingToken');
  if (item.state === 'done' && item.instant) return t('state.instant');
  const percent = formatPercent(fraction);
  return t(`state.${item.state}`, { percent });
}

/** A person's words for what went wrong. */
export function describe(err) {
  const code = err && err.code;
  if (code === 'file_too_large') return t('error.file_too_large', { max: formatBytes(err.detail.max_file_size || 0) });
  if (code === 'network') return t('error.network');
  if (['hash_mismatch', 'digest_mismatch', 'insufficient_storage', 'file_unreadable', 'upload_gone', 'invalid_name', 'name_too_long'].includes(code)) return t(`error.${code}`);
  if (err && err.status >= 500) return t('error.server', { status: err.status });
  return t('error.other', { message: (err && err.message) || String(err) });
}
