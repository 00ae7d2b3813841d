// The token prompt and the sign-out button. The prompt appears when a
// request was refused with 401 (auth.js); a token pasted into it is tried
// against the server first, and only a token the server accepts is kept.

import * as api from './api.js';
import * as auth from './auth.js';
import { onLanguage, t } from './i18n.js';
import { toast } from './toast.js';

/** What a token may look like: one word of visible ASCII (a header value).
 * The server's tokens are `tusk_` and 64 hex digits; others are left to
 * the server to judge. */
const PLAUSIBLE = /^[\x21-\x7e]{1,4096}$/;

export function setupAuth({ panel, text, form, input, submit, error, signOut, onSignOut }) {
  let trying = false;
  let problem = null;

  const draw = () => {
    const why = auth.asked();
    const wasHidden = panel.hidden;
    panel.hidden = !why;
    signOut.hidden = !auth.token();
    text.textContent = why === 'refused' ? t('auth.refusedBefore') : t('auth.needed');
    error.textContent = problem ? t(problem) : '';
    error.hidden = !problem;
    input.setAttribute('aria-invalid', problem ? 'true' : 'false');
    submit.disabled = trying;
    submit.textContent = trying ? t('auth.checking') : t('auth.submit');
    if (why && wasHidden) {
      // Shown: bring it into view and to the keyboard.
      panel.scrollIntoView({ block: 'nearest' });
      input.focus();
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (trying) return;
    // Tolerates what a copy often brings along: spaces, or the whole
    // `Bearer tusk_…` header value.
    const token = input.value.trim().replace(/^bearer\s+/i, '');
    if (!PLAUSIBLE.test(token)) {
      problem = token ? 'auth.malformed' : 'auth.empty';
      draw();
      input.focus();
      return;
    }
    trying = true;
    problem = null;
    draw();
    try {
      const verdict = await api.tryToken(token);
      problem = verdict === 'ok' ? null : 'auth.refused';
    } catch (err) {
      problem = err.status === 0 ? 'auth.unreachable' : 'auth.failed';
    }
    trying = false;
    if (problem) {
      draw();
      input.select();
      input.focus();
      return;
    }
    input.value = '';
    auth.signIn(token);
    toast(t('auth.signedIn'));
  });

  signOut.addEventListener('click', () => {
    auth.signOut();
    problem = null;
    toast(t('auth.signedOut'));
    onSignOut();
  });

  auth.onChange(draw);
  onLanguage(draw);
  draw();
}
