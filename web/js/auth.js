// The bearer token of this tab. A server on which tokens were created
// answers 401 to any request without a valid one; the page then asks for a
// token (auth-view.js), keeps it in the tab's sessionStorage (gone when the
// tab closes; never in localStorage) and sends it as
// `Authorization: Bearer …` on every API request. Requests refused with 401
// wait here for a token and are then sent again, so nothing fails for the
// lack of one.
//
// Every change of token bumps a generation number: a request remembers the
// generation it was sent with, so a 401 for a token that was replaced in
// the meantime is simply retried with the new one.

const KEY = 'tusk.token';

/** Why the page asks: 'needed' (no token yet) or 'refused' (the token was
 * refused: mistyped, revoked). null while nothing is asked. */
let asking = null;
let current = read();
let generation = 0;
const events = new EventTarget();

function read() {
  try {
    return sessionStorage.getItem(KEY) || null;
  } catch {
    return null;
  }
}

function write(value) {
  try {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the token holds in memory until the tab reloads.
  }
}

function changed() {
  events.dispatchEvent(new Event('change'));
}

/** The token requests carry, or null. */
export function token() {
  return current;
}

/** Bumped on every sign in and sign out. */
export function currentGeneration() {
  return generation;
}

/** 'needed', 'refused' or null: whether (and why) a token is asked for. */
export function asked() {
  return asking;
}

/** Listens to sign in, sign out and prompts (no detail: read the state). */
export function onChange(fn) {
  events.addEventListener('change', fn);
}

/** Takes a token the server accepted: waiting requests go on with it. */
export function signIn(value) {
  current = value;
  generation++;
  asking = null;
  write(value);
  changed();
}

/** Forgets the token of this tab. */
export function signOut() {
  current = null;
  generation++;
  write(null);
  changed();
}

/** Asks for a token (again) without a request having been refused. */
export function ask(why = 'needed') {
  if (asking === why) return;
  asking = why;
  changed();
}

/**
 * A request sent at generation `sent` was answered 401. If its token is
 * still this tab's, the token is dropped and one is asked for.
 */
export function refused(sent) {
  if (sent === generation && current) {
    current = null;
    generation++;
    write(null);
    asking = 'refused';
    changed();
  } else if (!current && !asking) {
    asking = 'needed';
    changed();
  }
}

/** Resolves once there is a token newer than generation `sent` (at once
 * if there already is); rejects with an AbortError if `signal` aborts. */
export function newer(sent, signal) {
  return new Promise((resolve, reject) => {
    const stopped = () => new DOMException('stopped', 'AbortError');
    if (signal && signal.aborted) return reject(stopped());
    const check = () => {
      if (generation > sent && current) {
        done();
        resolve();
      }
    };
    const abort = () => {
      done();
      reject(stopped());
    };
    const done = () => {
      events.removeEventListener('change', check);
      if (signal) signal.removeEventListener('abort', abort);
    };
    events.addEventListener('change', check);
    if (signal) signal.addEventListener('abort', abort, { once: true });
    check();
  });
}

/** Headers that carry the token, if there is one. */
export function headers() {
  return current ? { authorization: `Bearer ${current}` } : {};
}
