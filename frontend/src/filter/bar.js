// The filter bar: a query box with completion of field names and of known values (GET /values),
// the server's error shown inline at its `position`, and one removable chip per top-level condition.
import { h, replace, fmtInt, text } from '../dom.js';
import { get } from '../api.js';
import { terms, removeTerm, FIELDS, VALUE_FIELDS, quote } from './lang.js';

export function filterBar({ base, onApply }) {
  let current = '';
  let items = [];
  let active = -1;
  let seq = 0;
  let timer = null;

  const input = h('input', {
    id: 'filter-input', type: 'text', class: 'filter-input', testid: 'filter-input', autocomplete: 'off',
    spellcheck: 'false', role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false',
    'aria-controls': 'filter-suggest', placeholder: 'Filter, e.g. proto == TLS and dst.country != US and bytes > 1MB',
    onInput: () => { clearError(); schedule(); },
    onKeydown: (ev) => keydown(ev),
    onBlur: () => setTimeout(close, 150),
  });
  const list = h('ul', { id: 'filter-suggest', class: 'suggest', role: 'listbox', testid: 'filter-suggest', hidden: true });
  const errBox = h('div', { class: 'filter-error', role: 'alert', testid: 'filter-error', hidden: true });
  const chips = h('ul', { class: 'chips', testid: 'filter-chips', 'aria-label': 'Active conditions' });
  const apply = h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply');
  const clear = h('button', {
    type: 'button', class: 'secondary', testid: 'filter-clear',
    onClick: () => { input.value = ''; onApply(''); },
  }, 'Clear');
  const form = h('form', {
    class: 'filter-bar', role: 'search',
    onSubmit: (ev) => { ev.preventDefault(); close(); onApply(input.value.trim()); },
  },
  h('label', { for: 'filter-input', class: 'sr-only' }, 'Filter'),
  h('div', { class: 'filter-row' }, h('div', { class: 'filter-box' }, input, list), apply, clear),
  errBox, chips);

  function context() {
    const pos = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, pos);
    let m = /([A-Za-z_][\w.]*)\s*(==|!=|=|~|>=|<=|>|<)\s*"?([^"\s()]*)$/.exec(before);
    if (m) return { kind: 'value', field: m[1], prefix: m[3], from: pos - m[3].length - (/"$/.test(before.slice(0, pos - m[3].length)) ? 1 : 0), to: pos };
    m = /(^|[\s(])([A-Za-z_][\w.]*)?$/.exec(before);
    if (m && !/(==|!=|>=|<=|[=~<>])\s*$/.test(before)) {
      const word = m[2] || '';
      const prev = before.slice(0, before.length - word.length).trim();
      // After a complete condition the next word is `and`/`or`, not a field.
      if (prev && !/(\band|\bor|\bnot|\()$/i.test(prev)) return null;
      return { kind: 'field', prefix: word, from: pos - word.length, to: pos };
    }
    return null;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120);
  }

  async function suggest() {
    const my = ++seq;
    const c = context();
    if (!c) return close();
    if (c.kind === 'field') {
      const p = c.prefix.toLowerCase();
      show(c, FIELDS.filter((f) => f.startsWith(p) && f !== p).slice(0, 12).map((f) => ({ label: f, insert: `${f} `, extra: '' })));
      return;
    }
    if (!VALUE_FIELDS.has(c.field)) return close();
    try {
      const d = await get(`${base}/values?field=${encodeURIComponent(c.field)}&prefix=${encodeURIComponent(c.prefix)}&limit=12`);
      if (my !== seq) return;
      show(c, (d.values || []).map((v) => ({ label: text(v.value), insert: `${quote(v.value)} `, extra: fmtInt(v.flows) })));
    } catch {
      if (my === seq) close(); // completion is a help; the query itself reports errors on Apply
    }
  }

  function show(c, list2) {
    items = list2.map((it) => ({ ...it, c }));
    active = -1;
    if (!items.length) return close();
    replace(list, items.map((it, i) => h('li', {
      role: 'option', id: `filter-opt-${i}`, 'aria-selected': 'false', testid: 'filter-option',
      onMousedown: (ev) => { ev.preventDefault(); accept(i); },
    }, h('span', null, it.label), it.extra ? h('span', { class: 'muted' }, ` ${it.extra}`) : null)));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  }

  function close() {
    list.hidden = true;
    items = [];
    active = -1;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  function mark(i) {
    active = i;
    [...list.children].forEach((li, k) => li.setAttribute('aria-selected', String(k === i)));
    if (i >= 0) input.setAttribute('aria-activedescendant', `filter-opt-${i}`);
  }

  function accept(i) {
    const it = items[i];
    if (!it) return;
    const v = input.value;
    input.value = v.slice(0, it.c.from) + it.insert + v.slice(it.c.to).replace(/^\s+/, '');
    const pos = it.c.from + it.insert.length;
    input.setSelectionRange(pos, pos);
    close();
    input.focus();
    schedule();
  }

  function keydown(ev) {
    if (list.hidden) {
      if (ev.key === 'ArrowDown' && ev.altKey) { schedule(); ev.preventDefault(); }
      return;
    }
    if (ev.key === 'ArrowDown') { mark((active + 1) % items.length); ev.preventDefault(); }
    else if (ev.key === 'ArrowUp') { mark((active - 1 + items.length) % items.length); ev.preventDefault(); }
    else if ((ev.key === 'Enter' || ev.key === 'Tab') && active >= 0) { accept(active); ev.preventDefault(); }
    else if (ev.key === 'Escape') { close(); ev.preventDefault(); }
  }

  function clearError() {
    errBox.hidden = true;
    input.removeAttribute('aria-invalid');
  }

  return {
    node: form,
    input,
    /** Shows the current filter (from the URL) in the box and as chips. */
    update(q) {
      current = q;
      if (document.activeElement !== input || input.value.trim() === '' || input.value.trim() === q) input.value = q;
      clearError();
      replace(chips, terms(q).map((t, i) => h('li', { class: 'chip', testid: 'filter-chip' },
        h('span', null, t),
        h('button', {
          type: 'button', class: 'chip-x', 'aria-label': `Remove condition ${t}`, testid: 'filter-chip-remove',
          onClick: () => onApply(removeTerm(current, i)),
        }, '×'))));
    },
    /** Shows a 400 answer for query q: the message, and the query with the bad token marked. */
    error(q, e) {
      input.value = q;
      input.setAttribute('aria-invalid', 'true');
      const pos = typeof e.position === 'number' ? Math.max(0, Math.min(e.position, q.length)) : null;
      replace(errBox,
        h('span', { testid: 'filter-error-message' }, e.message),
        pos === null ? null : h('code', { class: 'q', testid: 'filter-error-query', 'data-position': String(pos) },
          q.slice(0, pos), h('mark', { testid: 'filter-error-mark' }, q.slice(pos, pos + 1) || ' '), q.slice(pos + 1)),
        pos === null ? null : h('span', { class: 'muted' }, ` (column ${pos + 1})`));
      errBox.hidden = false;
      if (pos !== null) input.setSelectionRange(pos, pos);
    },
  };
}
