// Light/dark theme: follows the system unless the user picks one; the choice is remembered and
// set as data-theme on <html>, which the CSS custom properties (and so the charts) follow.
import { h } from './dom.js';

const KEY = 'capatlas.theme';

function apply(t) {
  if (t === 'light' || t === 'dark') document.documentElement.setAttribute('data-theme', t);
  else document.documentElement.removeAttribute('data-theme');
}

try { apply(localStorage.getItem(KEY)); } catch { /* storage may be off */ }

export function currentTheme() {
  const t = document.documentElement.getAttribute('data-theme');
  if (t) return t;
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function themeButton() {
  const btn = h('button', {
    type: 'button', class: 'secondary', testid: 'theme-toggle',
    onClick: () => {
      const t = currentTheme() === 'dark' ? 'light' : 'dark';
      apply(t);
      try { localStorage.setItem(KEY, t); } catch { /* not remembered */ }
      label();
      // Charts read their colours when drawn: redraw the current view in the new theme.
      window.dispatchEvent(new Event('capatlas-theme'));
    },
  });
  const label = () => { btn.textContent = currentTheme() === 'dark' ? 'Light theme' : 'Dark theme'; btn.setAttribute('aria-label', `Switch to the ${btn.textContent.toLowerCase()}`); };
  label();
  return btn;
}
