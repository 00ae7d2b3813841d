// Short notices in a polite live region.

let timer = 0;

export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.classList.add('shown');
  clearTimeout(timer);
  timer = setTimeout(() => el.classList.remove('shown'), 5000);
}
