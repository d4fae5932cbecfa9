// Small helpers shared by the portal screens (account, admin, workspace settings).
import './portal.css';
import { h } from '../dom.js';

export function errorBox(testid) {
  return h('p', { class: 'error', role: 'alert', testid, hidden: true });
}

export function showError(el, msg) {
  el.textContent = msg || '';
  el.hidden = !msg;
}

export function noticeBox(testid) {
  return h('p', { class: 'muted', role: 'status', testid, hidden: true });
}

/** Unix seconds → "2026-01-02 03:04:05 UTC" ('' for null). */
export function fmtUnix(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) return '';
  return new Date(s * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** A <form> whose submit runs fn with the button disabled and errors shown in err. */
export function form(attrs, fn, err, ...children) {
  const el = h('form', {
    ...attrs,
    onSubmit: async (ev) => {
      ev.preventDefault();
      const btns = el.querySelectorAll('button');
      btns.forEach((b) => { b.disabled = true; });
      showError(err, '');
      try {
        await fn();
      } catch (e) {
        showError(err, e.message);
      } finally {
        btns.forEach((b) => { b.disabled = false; });
      }
    },
  }, ...children, err);
  return el;
}

export function field(id, label, input) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}
