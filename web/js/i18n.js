// The page's languages: English and Simplified Chinese. The language is
// the one chosen in the page (kept in localStorage), else the browser's.

export const STRINGS = {
  en: {
    skip: 'Skip to files',
    language: 'Language',
    'add.title': 'Upload',
    'add.hint': 'Drop files or folders here, or paste files.',
    'add.files': 'Choose files',
    'add.folder': 'Choose a folder',
    'add.note': 'Files are checked by their content first: what the server already holds is not sent again, and an interrupted upload continues where it stopped.',
    'add.dropping': 'Drop to upload',
    'add.reading': 'Reading the dropped folders…',
    'add.added': '{count} files added to the queue.',
    'add.added.one': 'One file added to the queue.',
    'queue.title': 'Queue',
    'queue.pauseAll': 'Pause all',
    'queue.resumeAll': 'Resume all',
    'queue.cancelAll': 'Cancel all',
    'queue.clear': 'Clear finished',
    'queue.empty': 'Nothing queued yet.',
    'queue.confirmCancel': 'Cancel {count} unfinished uploads? What was sent is deleted from the server.',
    'queue.confirmCancel.one': 'Cancel the unfinished upload? What was sent is deleted from the server.',
    'resume.text.one': 'One unfinished upload from an earlier visit. Browsers cannot reopen files on their own: select the same file again and only the missing parts are sent.',
    'resume.text': '{count} unfinished uploads from an earlier visit. Browsers cannot reopen files on their own: select the same files again and only the missing parts are sent.',
    'resume.select': 'Select the files',
    'resume.forget': 'Forget them',
    'resume.mismatch': '{name} is not the file that was being uploaded (its size differs).',
    'total.idle': 'Nothing to upload.',
    'total.busy': '{done} of {count} files · {acked} of {size} · {speed} · {eta} left',
    'total.busyNoEta': '{done} of {count} files · {acked} of {size}',
    'total.done': 'All {count} files uploaded ({size}).',
    'total.done.one': 'The file is uploaded ({size}).',
    'total.attention': '{done} of {count} files uploaded; {failed} need attention.',
    'state.queued': 'Waiting',
    'state.hashing': 'Hashing {percent}',
    'state.checking': 'Checking with the server',
    'state.uploading': 'Uploading {percent}',
    'state.paused': 'Paused',
    'state.completing': 'Verifying',
    'state.done': 'Uploaded',
    'state.instant': 'Instant upload (秒传): the server already had it',
    'state.failed': 'Failed',
    'state.needs-file': 'Select this file again to continue',
    'state.cancelled': 'Cancelled',
    'state.retrying': 'Connection trouble; retrying in {seconds} s',
    'item.speed': '{speed} · {eta} left',
    'action.pause': 'Pause',
    'action.resume': 'Resume',
    'action.cancel': 'Cancel',
    'action.retry': 'Retry',
    'action.reselect': 'Select file',
    'action.remove': 'Remove',
    'action.label': '{action}: {name}',
    'files.title': 'Files',
    'files.search': 'Search by name',
    'files.refresh': 'Refresh',
    'files.more': 'Show more',
    'files.empty': 'No files yet.',
    'files.signIn': 'Sign in with a token to see the files.',
    'files.noMatch': 'No file name contains “{query}”.',
    'files.download': 'Download',
    'files.copy': 'Copy link',
    'files.delete': 'Delete',
    'files.preview': 'Preview',
    'files.confirmDelete': 'Delete {name}? This cannot be undone.',
    'files.copied': 'Link copied.',
    'files.copiedUntil': 'Link copied; it works until {date}.',
    'files.copyFailed': 'Could not copy; the link is {url}',
    'files.deleted': '{name} deleted.',
    'files.loadFailed': 'The file list could not be loaded: {reason}',
    'auth.title': 'Access token',
    'auth.needed': 'This server needs an access token. Paste the token you were given (it starts with tusk_); uploads wait until then.',
    'auth.refusedBefore': 'The server no longer accepts the token of this tab (it may have been revoked). Paste a valid token; uploads wait until then.',
    'auth.label': 'Token',
    'auth.submit': 'Sign in',
    'auth.checking': 'Checking…',
    'auth.note': 'The token is kept in this tab only, until you sign out or close the tab.',
    'auth.empty': 'Paste a token first.',
    'auth.malformed': 'That is not a token: a token is a single word, like tusk_ followed by 64 hex digits.',
    'auth.refused': 'The server refused this token. Check that it was copied whole and has not been revoked.',
    'auth.unreachable': 'The server cannot be reached to check the token. Check the connection and try again.',
    'auth.failed': 'The token could not be checked (the server failed). Try again later.',
    'auth.signedIn': 'Signed in.',
    'auth.signOut': 'Sign out',
    'auth.signedOut': 'Signed out: this tab forgot the token.',
    'state.waitingToken': 'Waiting for an access token',
    'preview.close': 'Close',
    'preview.truncated': 'Showing the first {size}.',
    'preview.failed': 'The preview could not be loaded.',
    'error.file_too_large': 'Too large: this server accepts files up to {max}.',
    'error.hash_mismatch': 'The uploaded bytes do not match the file (did it change while uploading?). Retry to start again.',
    'error.digest_mismatch': 'A part was damaged on the way and refused by the server.',
    'error.network': 'The server cannot be reached. Check the connection and retry.',
    'error.server': 'The server failed (HTTP {status}). Retry later.',
    'error.insufficient_storage': 'The server is out of storage space.',
    'error.file_unreadable': 'The file can no longer be read (was it moved or changed?). Select it again.',
    'error.upload_gone': 'The server no longer has this upload; retry to start it again.',
    'error.invalid_name': 'The server refused this file name.',
    'error.name_too_long': 'The file name is too long for the server.',
    'error.other': 'The server refused the upload: {message}',
  },
  'zh-CN': {
    skip: '跳到文件列表',
    language: '语言',
    'add.title': '上传',
    'add.hint': '把文件或文件夹拖到这里，或粘贴文件。',
    'add.files': '选择文件',
    'add.folder': '选择文件夹',
    'add.note': '先按内容校验文件：服务器已有的内容不再重复发送（秒传），中断的上传从断点继续（断点续传）。',
    'add.dropping': '松开即可上传',
    'add.reading': '正在读取拖入的文件夹…',
    'add.added': '已将 {count} 个文件加入队列。',
    'queue.title': '上传队列',
    'queue.pauseAll': '全部暂停',
    'queue.resumeAll': '全部继续',
    'queue.cancelAll': '全部取消',
    'queue.clear': '清除已完成',
    'queue.empty': '队列为空。',
    'queue.confirmCancel': '取消 {count} 个未完成的上传？已发送的部分会从服务器删除。',
    'resume.text': '上次还有 {count} 个上传未完成。浏览器无法自行重新打开文件：请再次选择这些文件，只会发送缺少的部分。',
    'resume.select': '选择文件',
    'resume.forget': '不再继续',
    'resume.mismatch': '{name} 不是之前上传的那个文件（大小不同）。',
    'total.idle': '没有要上传的文件。',
    'total.busy': '{done} / {count} 个文件 · {acked} / {size} · {speed} · 剩余 {eta}',
    'total.busyNoEta': '{done} / {count} 个文件 · {acked} / {size}',
    'total.done': '全部 {count} 个文件已上传（{size}）。',
    'total.attention': '已上传 {done} / {count} 个文件，{failed} 个需要处理。',
    'state.queued': '等待中',
    'state.hashing': '计算哈希 {percent}',
    'state.checking': '正在向服务器校验',
    'state.uploading': '上传中 {percent}',
    'state.paused': '已暂停',
    'state.completing': '正在校验',
    'state.done': '已上传',
    'state.instant': '秒传：服务器已有此文件',
    'state.failed': '失败',
    'state.needs-file': '请重新选择此文件以继续',
    'state.cancelled': '已取消',
    'state.retrying': '连接出现问题，{seconds} 秒后重试',
    'item.speed': '{speed} · 剩余 {eta}',
    'action.pause': '暂停',
    'action.resume': '继续',
    'action.cancel': '取消',
    'action.retry': '重试',
    'action.reselect': '选择文件',
    'action.remove': '移除',
    'action.label': '{action}：{name}',
    'files.title': '文件',
    'files.search': '按名称搜索',
    'files.refresh': '刷新',
    'files.more': '显示更多',
    'files.empty': '还没有文件。',
    'files.signIn': '请用令牌登录以查看文件。',
    'files.noMatch': '没有名称包含“{query}”的文件。',
    'files.download': '下载',
    'files.copy': '复制链接',
    'files.delete': '删除',
    'files.preview': '预览',
    'files.confirmDelete': '删除 {name}？此操作无法撤销。',
    'files.copied': '链接已复制。',
    'files.copiedUntil': '链接已复制，有效期至 {date}。',
    'files.copyFailed': '无法复制，链接是 {url}',
    'files.deleted': '已删除 {name}。',
    'files.loadFailed': '无法加载文件列表：{reason}',
    'auth.title': '访问令牌',
    'auth.needed': '此服务器需要访问令牌。请粘贴你获得的令牌（以 tusk_ 开头）；在此之前上传会等待。',
    'auth.refusedBefore': '服务器不再接受此标签页的令牌（可能已被吊销）。请粘贴有效的令牌；在此之前上传会等待。',
    'auth.label': '令牌',
    'auth.submit': '登录',
    'auth.checking': '正在验证…',
    'auth.note': '令牌只保存在此标签页中，直到你退出登录或关闭标签页。',
    'auth.empty': '请先粘贴令牌。',
    'auth.malformed': '这不是令牌：令牌是一个连续的词，形如 tusk_ 加 64 位十六进制数字。',
    'auth.refused': '服务器拒绝了这个令牌。请检查是否复制完整、是否已被吊销。',
    'auth.unreachable': '无法连接服务器来验证令牌。请检查网络后重试。',
    'auth.failed': '无法验证令牌（服务器出错）。请稍后重试。',
    'auth.signedIn': '已登录。',
    'auth.signOut': '退出登录',
    'auth.signedOut': '已退出登录：此标签页已忘记令牌。',
    'state.waitingToken': '正在等待访问令牌',
    'preview.close': '关闭',
    'preview.truncated': '仅显示前 {size}。',
    'preview.failed': '无法加载预览。',
    'error.file_too_large': '文件太大：此服务器最多接受 {max}。',
    'error.hash_mismatch': '上传的内容与文件不符（上传期间文件是否被修改？）。点击重试重新开始。',
    'error.digest_mismatch': '某个分片在传输中损坏，被服务器拒绝。',
    'error.network': '无法连接服务器。请检查网络后重试。',
    'error.server': '服务器出错（HTTP {status}）。请稍后重试。',
    'error.insufficient_storage': '服务器存储空间不足。',
    'error.file_unreadable': '无法再读取此文件（是否被移动或修改？）。请重新选择。',
    'error.upload_gone': '服务器上已没有这个上传；点击重试重新开始。',
    'error.invalid_name': '服务器拒绝了这个文件名。',
    'error.name_too_long': '文件名太长，服务器不接受。',
    'error.other': '服务器拒绝了上传：{message}',
  },
};

const UNITS = {
  en: { s: 's', min: 'min', h: 'h', d: 'd', perSecond: '/s' },
  'zh-CN': { s: ' 秒', min: ' 分', h: ' 小时', d: ' 天', perSecond: '/秒' },
};

const KEY = 'tusk.lang';
let lang = 'en';
const listeners = [];

/** The language to start with: the saved choice, else the browser's. */
function initial() {
  let saved = null;
  try {
    saved = localStorage.getItem(KEY);
  } catch {
    // Storage can be disabled; the browser's language then decides.
  }
  if (saved && STRINGS[saved]) return saved;
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const w of wanted) {
    const l = String(w).toLowerCase();
    if (l.startsWith('zh')) return 'zh-CN';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

export function language() {
  return lang;
}

/** Switches the language, remembers it, and redraws what listens. */
export function setLanguage(next, remember = true) {
  lang = STRINGS[next] ? next : 'en';
  if (remember) {
    try {
      localStorage.setItem(KEY, lang);
    } catch {
      // Not remembered; the choice still holds for this visit.
    }
  }
  document.documentElement.lang = lang;
  translate(document);
  for (const fn of listeners) fn(lang);
}

export function onLanguage(fn) {
  listeners.push(fn);
}

/** The text for `key` in the current language, with `{name}` filled in.
 * A `key.one` variant, where a language has one, is used for a count of 1. */
export function t(key, vars = {}) {
  const one = vars.count === 1 ? STRINGS[lang][`${key}.one`] : undefined;
  const text = one ?? STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fills the static text marked with data-i18n attributes. */
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function start() {
  setLanguage(initial(), false);
}

// ---- numbers, sizes, times ----

export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(v)} ${units[i]}`;
}

export function formatSpeed(bytesPerSecond) {
  return formatBytes(Math.round(bytesPerSecond)) + UNITS[lang].perSecond;
}

export function formatDuration(seconds) {
  const u = UNITS[lang];
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}${u.s}`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${u.min} ${s % 60}${u.s}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}${u.h} ${m % 60}${u.min}`;
  return `${Math.floor(h / 24)}${u.d} ${h % 24}${u.h}`;
}

export function formatPercent(fraction) {
  return new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 0 }).format(fraction);
}

export function formatDate(iso) {
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}
