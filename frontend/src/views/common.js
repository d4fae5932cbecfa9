// Helpers shared by the analysis views: query strings, metric formatting, keyboard-navigable
// tables, and the loading / empty / error states every view shows.
import { h, replace, fmtInt, fmtBytes, text } from '../dom.js';

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const METRICS = {
  flows: { label: 'Flows', fmt: fmtInt },
  bytes: { label: 'Bytes', fmt: fmtBytes },
  sent: { label: 'Bytes sent', fmt: fmtBytes },
  recv: { label: 'Bytes received', fmt: fmtBytes },
  packets: { label: 'Packets', fmt: fmtInt },
  src_ips: { label: 'Distinct sources', fmt: fmtInt },
  dst_ips: { label: 'Distinct destinations', fmt: fmtInt },
};

export const fmtMetric = (m, v) => (METRICS[m] ? METRICS[m].fmt(v) : fmtInt(v));

/** A row's group key (aggregate rows carry key: [..]) as display text; null → "(none)". */
export function keyText(k) {
  return k === null || k === undefined || k === '' ? '(none)' : text(k);
}

/** A segmented switch: options [[value,label]], onChange(value). */
export function switcher(label, options, value, onChange, testid) {
  const btns = options.map(([v, l]) => h('button', {
    type: 'button', class: v === value ? 'seg on' : 'seg', 'aria-pressed': String(v === value), 'data-value': v,
    testid: testid ? `${testid}-${v}` : null,
    onClick: () => {
      btns.forEach((b) => { const on = b.getAttribute('data-value') === v; b.className = on ? 'seg on' : 'seg'; b.setAttribute('aria-pressed', String(on)); });
      onChange(v);
    },
  }, l));
  return h('div', { class: 'segs', role: 'group', 'aria-label': label, testid }, btns);
}

/**
 * A table whose rows are reachable with the keyboard: Tab into the body, arrows move, Enter
 * activates (same as a click). cols: [{label, num, get(row) → text|Node, title?}]
 */
export function dataTable(cols, rows, { testid, onActivate, caption } = {}) {
  const trs = rows.map((r, i) => {
    const tr = h('tr', {
      tabindex: i === 0 ? 0 : -1, testid: testid ? `${testid}-row` : null, class: onActivate ? 'clickable' : null,
      onClick: onActivate ? () => onActivate(r) : null,
    }, cols.map((c) => h('td', { class: c.num ? 'num' : c.cls || null, title: c.title ? c.title(r) : null }, c.get(r))));
    return tr;
  });
  const tbody = h('tbody', {
    onKeydown: (ev) => {
      const tr = ev.target.closest('tr');
      if (!tr) return;
      let next = null;
      if (ev.key === 'ArrowDown') next = tr.nextElementSibling;
      else if (ev.key === 'ArrowUp') next = tr.previousElementSibling;
      else if (ev.key === 'Home') next = tbody.firstElementChild;
      else if (ev.key === 'End') next = tbody.lastElementChild;
      else if (ev.key === 'Enter' && onActivate) { tr.click(); ev.preventDefault(); return; }
      if (next) {
        tr.tabIndex = -1;
        next.tabIndex = 0;
        next.focus();
        ev.preventDefault();
      }
    },
  }, trs);
  if (!rows.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: cols.length, class: 'muted' }, 'No flows match the filter.')));
  return h('table', { testid },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
    tbody);
}

/** A panel's status line: loading / error / empty, with data-state for tests. */
export function statusLine(testid) {
  const el = h('p', { class: 'muted', testid, 'aria-live': 'polite' });
  return {
    node: el,
    loading() { el.className = 'muted'; replace(el, 'Loading…'); el.hidden = false; },
    error(e) { el.className = 'error'; replace(el, e.message || String(e)); el.hidden = false; },
    empty(msg = 'No flows match the filter.') { el.className = 'muted'; replace(el, msg); el.hidden = false; },
    clear() { el.hidden = true; },
  };
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

/**
 * Runs each chart's loader; a failing chart shows its error and the others still draw.
 * Resolves when all are drawn; rethrows a filter error (400) so the filter bar can show it.
 */
export async function runAll(jobs) {
  let filterErr = null;
  await Promise.all(jobs.map(async ([card, fn]) => {
    card.loading();
    try {
      await fn();
    } catch (e) {
      if (e.aborted) return; // a newer filter took over: its load draws this card
      card.error(e.message || String(e));
      if (e.status === 400 && e.field === 'filter') filterErr = e;
    }
  }));
  if (filterErr) throw filterErr;
}

/** The day key of an aggregate row as epoch ms (accepts "2024-01-31", ns, or seconds). */
export function dayMs(k) {
  if (typeof k === 'number') return k > 1e14 ? Math.floor(k / 1e6) : k > 1e11 ? k : k * 1000;
  const t = Date.parse(/T/.test(String(k)) ? String(k) : `${k}T00:00:00Z`);
  return Number.isNaN(t) ? null : t;
}

export function dayLabel(k) {
  const t = dayMs(k);
  return t === null ? keyText(k) : new Date(t).toISOString().slice(0, 10);
}
