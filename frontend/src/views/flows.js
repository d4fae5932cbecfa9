// Flows view: a virtualised grid over the filtered flows. Pages of 500 come from GET /flows with
// filter/sort/order/cursor (only the shown columns); only the rows in sight are in the DOM, so
// scrolling through millions of flows stays smooth. Only the pages near the view are kept (KEEP):
// a page scrolled far away is dropped and fetched again by its start cursor when it comes back
// into sight, so memory stays bounded however deep one scrolls. Click or Enter on a row opens
// its detail.
import { h, replace, fmtInt, fmtBytes, fmtTime, fmtDuration, text } from '../dom.js';
import { get } from '../api.js';
import { qs, kv } from './common.js';
import { reportLines } from './captures.js';
import { cond } from '../filter/lang.js';

export const FIELDS = ['id', 'capture', 'first', 'last', 'first_ns', 'last_ns', 'duration', 'ip_version', 'l4', 'src', 'src_port',
  'dst', 'dst_port', 'icmp_type', 'icmp_code', 'vlan', 'src_mac', 'dst_mac', 'packets', 'bytes', 'sent_packets', 'recv_packets',
  'sent_bytes', 'recv_bytes', 'sent_payload', 'recv_payload', 'sent_retrans', 'recv_retrans', 'sent_gap', 'recv_gap',
  'tcp_flags_sent', 'tcp_flags_recv', 'tcp_state', 'proto', 'proto_master', 'proto_app', 'category', 'host', 'dns_name',
  'user_agent', 'tls_version', 'risks', 'src_country', 'dst_country', 'src_asn', 'dst_asn', 'encap', 'first_packet', 'first_offset'];

const DEFAULT_COLS = ['first', 'src', 'src_port', 'dst', 'dst_port', 'l4', 'proto', 'host', 'dst_country', 'packets', 'bytes', 'duration'];
const BYTES = new Set(['bytes', 'sent_bytes', 'recv_bytes', 'sent_payload', 'recv_payload']);
const NUM = new Set(['id', 'capture', 'first_ns', 'last_ns', 'duration', 'ip_version', 'src_port', 'dst_port', 'icmp_type', 'icmp_code',
  'vlan', 'packets', 'bytes', 'sent_packets', 'recv_packets', 'sent_bytes', 'recv_bytes', 'sent_payload', 'recv_payload',
  'sent_retrans', 'recv_retrans', 'sent_gap', 'recv_gap', 'src_asn', 'dst_asn', 'first_packet', 'first_offset']);
const WIDTH = { first: 200, last: 200, src: 170, dst: 170, host: 200, dns_name: 200, user_agent: 220, proto: 130, encap: 180, risks: 180, src_mac: 140, dst_mac: 140, first_ns: 170, last_ns: 170 };
const ROW_H = 28;
const PAGE = 500;
const OVERSCAN = 2; // rows drawn beyond each edge of the viewport
const PREFETCH = 350; // rows left below the viewport when the next page is asked for
const KEEP_DEFAULT = 24; // pages kept (12,000 rows); localStorage 'capatlas.flowsKeepPages' sets it (>= 2)
const LS_KEY = 'capatlas.flowColumns';

const anyText = (v) => (Array.isArray(v) ? v.map(text).join(', ') : text(v));
const GROUPED = (k) => NUM.has(k) && !/_ns$|port|asn|id$|capture|offset|packet$|vlan|icmp/.test(k);

/** The display function of a field, chosen once per column (the grid calls it for every cell). */
export function formatterOf(k) {
  const base = k === 'first' || k === 'last' ? fmtTime : k === 'duration' ? fmtDuration : BYTES.has(k) ? fmtBytes : null;
  if (base) return (v) => (v === null || v === undefined ? '' : base(v));
  if (GROUPED(k)) return (v) => (v === null || v === undefined ? '' : typeof v === 'number' ? fmtInt(v) : anyText(v));
  return (v) => (v === null || v === undefined ? '' : anyText(v));
}

export function fmtField(f, k) {
  return formatterOf(k)(f[k]);
}

// Text widths without layout: the advance of every printable ASCII character in the grid's font,
// measured once on a canvas; other characters count as the widest ASCII one plus a margin. A cell
// is clipped (with an ellipsis) only when its text may not fit, so the many cells that fit need
// no clip of their own, which keeps each scrolled frame's paint and layerisation small.
let advances = null;
let advanceFont = '';
function measureFont(font) {
  if (advances && advanceFont === font) return;
  const c = document.createElement('canvas').getContext('2d');
  advances = new Float32Array(128);
  if (!c) { advances.fill(1e6); advanceFont = font; return; } // no canvas: clip every cell
  c.font = font;
  let widest = 0;
  for (let i = 32; i < 127; i++) { advances[i] = c.measureText(String.fromCharCode(i)).width; widest = Math.max(widest, advances[i]); }
  for (let i = 0; i < 32; i++) advances[i] = widest;
  advances[127] = widest * 1.6; // anything outside ASCII (wide scripts, emoji)
  advanceFont = font;
}
function mayOverflow(s, room) {
  if (s.length * advances[127] <= room) return false; // short enough whatever its characters
  let w = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    w += advances[c < 127 ? c : 127];
    if (w > room) return true;
  }
  return false;
}

function keepPages() {
  try {
    const n = Number(localStorage.getItem('capatlas.flowsKeepPages'));
    if (Number.isInteger(n) && n >= 2) return n;
  } catch { /* default */ }
  return KEEP_DEFAULT;
}

function loadCols() {
  try {
    const c = JSON.parse(localStorage.getItem(LS_KEY) || 'null');
    if (Array.isArray(c) && c.length && c.every((x) => FIELDS.includes(x))) return c;
  } catch { /* default */ }
  return [...DEFAULT_COLS];
}

export function flowsView(ctx) {
  let cols = loadCols();
  let sort = 'first';
  let order = 'asc';
  // pages.get(k): rows k*PAGE .. k*PAGE+PAGE-1 (the last page may be shorter); cursors[k]: what
  // page k starts after (null for the first), known for every page up to the deepest fetched.
  let pages = new Map();
  let cursors = [null];
  let deepest = 0; // the deepest page fetched
  let loaded = 0; // rows in pages 0..deepest
  let next = null; // the cursor after the deepest page; null at the end
  let total = 0;
  let fetching = null; // the next deeper page
  const refetching = new Set(); // dropped pages being fetched again
  let gen = 0;
  let activeRow = 0;
  const KEEP = keepPages();
  const rowAt = (i) => { const pg = pages.get(Math.floor(i / PAGE)); return pg ? pg[i % PAGE] || null : null; };

  const totalEl = h('span', { testid: 'flows-total' }, '…');
  const status = h('p', { class: 'muted', testid: 'flows-status', 'aria-live': 'polite' });
  const head = h('div', { class: 'vgrid-head', role: 'row' });
  const win = h('div', {
    class: 'vgrid-window', role: 'rowgroup',
    onClick: (ev) => {
      const el = ev.target.closest('.vrow');
      const i = el ? Number(el.getAttribute('data-index')) : -1;
      if (rowAt(i)) { activeRow = i; open(rowAt(i)); schedule(); }
    },
  });
  const spacer = h('div', { class: 'vgrid-spacer' }, win);
  const scroller = h('div', {
    class: 'vgrid-scroll', tabindex: 0, testid: 'flows-scroll', 'aria-label': 'Flows; arrow keys move, Enter opens the detail',
    onScroll: () => schedule(), onKeydown: (ev) => key(ev),
  }, spacer);
  new ResizeObserver(() => { viewH = scroller.clientHeight; schedule(); }).observe(scroller);
  const grid = h('div', { class: 'vgrid', role: 'grid', testid: 'flows-table', 'aria-rowcount': '0' }, head, scroller);
  const detail = h('div', { class: 'flow-detail card', testid: 'flow-detail', hidden: true });

  const chooser = h('details', { class: 'col-chooser', testid: 'column-chooser' },
    h('summary', null, 'Columns'),
    h('div', { class: 'col-list' }, FIELDS.map((f) => {
      const cb = h('input', {
        type: 'checkbox', id: `col-${f}`, checked: cols.includes(f), testid: `col-${f}`,
        onChange: () => {
          cols = cb.checked ? FIELDS.filter((x) => x === f || cols.includes(x)) : cols.filter((x) => x !== f);
          if (!cols.length) cols = ['first'];
          try { localStorage.setItem(LS_KEY, JSON.stringify(cols)); } catch { /* private mode */ }
          reload();
        },
      });
      return h('label', { for: `col-${f}` }, cb, ` ${f}`);
    })));

  const widthOf = (c) => WIDTH[c] || (NUM.has(c) ? 90 : 110);
  let fmts = []; // per shown column: its display function
  let rooms = []; // per shown column: the width its text may take (px)

  function drawHead() {
    pool = [];
    poolFirst = 0;
    fmts = cols.map(formatterOf);
    rooms = [];
    replace(win);
    replace(head, cols.map((c) => {
      const cell = h('div', {
        class: `vcell hcell${NUM.has(c) ? ' num' : ''}`, role: 'columnheader', tabindex: 0, testid: `sort-${c}`,
        'aria-sort': sort === c ? (order === 'asc' ? 'ascending' : 'descending') : 'none',
        onClick: () => setSort(c),
        onKeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); setSort(c); } },
      }, c, sort === c ? (order === 'asc' ? ' ▲' : ' ▼') : '');
      cell.style.width = `${widthOf(c)}px`;
      return cell;
    }));
    const w = cols.reduce((a, c) => a + widthOf(c), 0);
    head.style.width = `${w}px`;
    spacer.style.width = `${w}px`;
    rowW = w;
  }

  function setSort(c) {
    if (sort === c) order = order === 'asc' ? 'desc' : 'asc';
    else { sort = c; order = 'asc'; }
    reload();
  }

  let raf = 0;
  function schedule() {
    if (raf) return;
    raf = requestAnimationFrame(() => { raf = 0; draw(); });
  }

  let maxDraw = 0;
  function draw() {
    const t0 = performance.now();
    drawRows();
    const ms = performance.now() - t0;
    if (ms > maxDraw) { maxDraw = ms; grid.setAttribute('data-max-draw-ms', String(Math.round(ms))); }
  }

  // Rows are pooled and kept in DOM order (index order, for screen readers and tests). Scrolling
  // moves the window with a transform and rewrites only the rows that enter the view: the rows
  // that stay keep their text, and the ones that left are moved to the other end and refilled.
  // Every row and cell has a fixed size and CSS containment, so a text change lays out only its
  // own cell, never the grid. Each frame reads the scroll position first, then only writes.
  let pool = []; // in DOM order: pool[k] shows row poolFirst + k
  let poolFirst = 0;
  let rowW = 0;
  let viewH = 0;
  function poolRow() {
    const texts = [];
    const cellEls = [];
    const cells = cols.map((c) => {
      const t = document.createTextNode('');
      texts.push(t);
      const cell = h('div', { class: `vcell${NUM.has(c) ? ' num' : ''}`, role: 'gridcell' }, t);
      cell.style.width = `${widthOf(c)}px`;
      cellEls.push(cell);
      return cell;
    });
    const el = h('div', { class: 'vrow', role: 'row' }, cells);
    el.style.width = `${rowW}px`;
    return { el, texts, cellEls, clipped: cols.map(() => false), index: -1, flow: undefined, active: false, tid: '' };
  }

  // The room for text in each column, from the first drawn cell's font and padding (read once
  // per column set, before any write of the frame).
  function measureRooms(r) {
    const cs = getComputedStyle(r.cellEls[0]);
    measureFont(`${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`);
    const pad = (parseFloat(cs.paddingLeft) || 0) + (parseFloat(cs.paddingRight) || 0);
    rooms = cols.map((c) => widthOf(c) - pad - 1);
  }

  function fill(r, i) {
    const f = rowAt(i);
    const active = i === activeRow;
    if (r.index === i && r.flow === f && r.active === active) return;
    if (r.index !== i) {
      r.el.setAttribute('aria-rowindex', String(i + 1));
      r.el.setAttribute('data-index', String(i));
    }
    if (r.active !== active) r.el.classList.toggle('active', active);
    const tid = f ? 'flow-row' : 'flow-row-pending';
    if (r.tid !== tid) { r.el.setAttribute('data-testid', tid); r.tid = tid; }
    if (r.index !== i || r.flow !== f) {
      for (let c = 0; c < fmts.length; c++) {
        const v = f ? fmts[c](f[cols[c]]) : c === 0 && i <= loaded ? '…' : '';
        const t = r.texts[c];
        if (t.data === v) continue;
        t.data = v;
        const clip = mayOverflow(v, rooms[c]);
        if (clip !== r.clipped[c]) { r.cellEls[c].classList.toggle('clip', clip); r.clipped[c] = clip; }
      }
    }
    r.index = i;
    r.flow = f;
    r.active = active;
  }

  function drawRows() {
    // read
    const top = scroller.scrollTop;
    if (!viewH) viewH = scroller.clientHeight || 560;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(rowsShown(), Math.ceil((top + viewH) / ROW_H) + OVERSCAN);
    const n = Math.max(0, last - first);
    // write
    const oldLast = poolFirst + pool.length;
    const a = Math.max(first, poolFirst);
    const b = Math.min(last, oldLast);
    if (a < b) {
      const kept = pool.slice(a - poolFirst, b - poolFirst);
      const free = pool.slice(0, a - poolFirst).concat(pool.slice(b - poolFirst));
      const headRows = [];
      for (let i = first; i < a; i++) headRows.push(free.pop() || poolRow());
      const tailRows = [];
      for (let i = b; i < last; i++) tailRows.push(free.pop() || poolRow());
      for (const r of free) r.el.remove();
      if (headRows.length) win.prepend(...headRows.map((r) => r.el));
      if (tailRows.length) win.append(...tailRows.map((r) => r.el));
      pool = headRows.concat(kept, tailRows);
    } else {
      while (pool.length < n) { const r = poolRow(); pool.push(r); win.append(r.el); }
      while (pool.length > n) pool.pop().el.remove();
    }
    if (pool.length && !rooms.length) measureRooms(pool[0]);
    if (poolFirst !== first || !win.style.transform) win.style.transform = `translateY(${first * ROW_H}px)`;
    poolFirst = first;
    for (let k = 0; k < n; k++) fill(pool[k], first + k);
    // prefetch: ask for the next page well before the viewport reaches the end of the rows
    if (next !== null && last > loaded - PREFETCH) more();
    // pages in sight that were dropped come back by their cursors
    for (let k = Math.floor(first / PAGE); k * PAGE < Math.min(last, loaded); k++) if (!pages.has(k)) refetch(k);
  }

  function rowsShown() {
    return next !== null ? Math.min(Math.max(total, loaded + 1), loaded + 1000) : loaded;
  }

  // Keeps at most KEEP pages: those farthest from the one in view go.
  function keep() {
    if (pages.size > KEEP) {
      const at = Math.floor(scroller.scrollTop / ROW_H / PAGE);
      const far = [...pages.keys()].sort((a, b) => Math.abs(b - at) - Math.abs(a - at));
      for (const d of far.slice(0, pages.size - KEEP)) pages.delete(d);
    }
    grid.setAttribute('data-pages', String(pages.size));
  }

  async function refetch(k) {
    if (refetching.has(k) || k > deepest) return;
    const my = gen;
    refetching.add(k);
    try {
      const d = await get(`${ctx.base}/flows${qs(params(cursors[k]))}`, { signal: ctx.signal });
      if (my !== gen) return;
      pages.set(k, (d.flows || []).slice(0, PAGE));
      keep();
      schedule();
    } catch (e) {
      if (my === gen && !e.aborted) { status.className = 'error'; status.textContent = `Cannot load flows again: ${e.message}`; status.hidden = false; }
    } finally {
      if (my === gen) refetching.delete(k);
    }
  }

  function sizeSpacer() {
    spacer.style.height = `${rowsShown() * ROW_H}px`;
    grid.setAttribute('aria-rowcount', String(total));
  }

  function params(cursor) {
    const p = { filter: ctx.filter || undefined, sort, order, limit: PAGE, columns: [...new Set(['id', 'capture', ...cols])].join(',') };
    if (cursor !== null && cursor !== undefined) {
      if (typeof cursor === 'number') p.after = cursor; // id-order paging of the first server version
      else p.cursor = cursor;
    }
    return p;
  }

  async function more() {
    if (fetching || next === null) return fetching;
    const my = gen;
    fetching = (async () => {
      try {
        const d = await get(`${ctx.base}/flows${qs(params(next))}`, { signal: ctx.signal });
        if (my !== gen) return;
        const k = deepest + 1;
        const got = d.flows || [];
        next = d.next ?? null;
        if (got.length) {
          deepest = k;
          pages.set(k, got);
          loaded = k * PAGE + got.length;
          cursors[k + 1] = next;
          keep();
        }
        if (typeof d.total === 'number') total = d.total;
        sizeSpacer();
        schedule();
      } catch (e) {
        if (my === gen && !e.aborted) { status.className = 'error'; status.textContent = `Cannot load more flows: ${e.message}`; next = null; sizeSpacer(); }
      } finally {
        if (my === gen) fetching = null;
      }
    })();
    return fetching;
  }

  async function reload() {
    const my = ++gen;
    fetching = null;
    drawHead();
    status.className = 'muted';
    status.textContent = 'Loading…';
    status.hidden = false;
    try {
      const d = await get(`${ctx.base}/flows${qs(params(null))}`, { signal: ctx.signal });
      if (my !== gen) return;
      const got = d.flows || [];
      pages = new Map([[0, got]]);
      refetching.clear();
      deepest = 0;
      loaded = got.length;
      next = d.next ?? null;
      cursors = [null, next];
      grid.setAttribute('data-pages', '1');
      total = typeof d.total === 'number' ? d.total : loaded;
      totalEl.textContent = String(total);
      totalEl.setAttribute('data-value', String(total));
      activeRow = 0;
      scroller.scrollTop = 0;
      sizeSpacer();
      draw();
      if (!loaded) status.textContent = ctx.filter ? 'No flows match the filter.' : 'No flows yet: add a capture above.';
      else status.hidden = true;
    } catch (e) {
      if (my !== gen) return;
      if (e.aborted) throw e;
      pages = new Map();
      cursors = [null];
      deepest = 0;
      loaded = 0;
      next = null;
      total = 0;
      totalEl.textContent = '–';
      sizeSpacer();
      draw();
      status.className = 'error';
      status.textContent = `Cannot load flows: ${e.message}`;
      throw e;
    }
  }

  function key(ev) {
    const page = Math.max(1, Math.floor(scroller.clientHeight / ROW_H) - 1);
    let i = activeRow;
    if (ev.key === 'ArrowDown') i++;
    else if (ev.key === 'ArrowUp') i--;
    else if (ev.key === 'PageDown') i += page;
    else if (ev.key === 'PageUp') i -= page;
    else if (ev.key === 'Home') i = 0;
    else if (ev.key === 'End') i = loaded - 1;
    else if (ev.key === 'Enter') { if (rowAt(activeRow)) open(rowAt(activeRow)); ev.preventDefault(); return; }
    else return;
    ev.preventDefault();
    activeRow = Math.max(0, Math.min(loaded - 1, i));
    const y = activeRow * ROW_H;
    if (y < scroller.scrollTop) scroller.scrollTop = y;
    else if (y + ROW_H > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = y + ROW_H - scroller.clientHeight;
    schedule();
  }

  async function open(f0) {
    detail.hidden = false;
    replace(detail, h('p', { class: 'muted' }, 'Loading the flow…'));
    let f = f0;
    try {
      f = (await get(`${ctx.base}/flows/${encodeURIComponent(f0.id)}`)).flow || f0;
    } catch (e) {
      replace(detail, h('p', { class: 'error' }, `Cannot load flow ${f0.id}: ${e.message}`));
      return;
    }
    const cap = (ctx.captures || []).find((c) => c.id === f.capture);
    const filt = (label, term) => h('button', { type: 'button', class: 'secondary small', onClick: () => ctx.add(term) }, label);
    replace(detail,
      h('div', { class: 'chart-head' },
        h('h3', null, `Flow ${text(f.id)}: ${text(f.src)} → ${text(f.dst)}`),
        h('div', { class: 'tools' },
          h('a', { class: 'button small', href: `${ctx.base}/flows/${encodeURIComponent(f.id)}/pcap`, download: `flow-${text(f.id)}.pcap`, testid: 'flow-pcap' }, 'Download pcap'),
          h('button', { type: 'button', class: 'secondary small', testid: 'flow-detail-close', onClick: () => { detail.hidden = true; scroller.focus(); } }, 'Close'))),
      h('div', { class: 'tools' },
        f.src ? filt(`Filter src ${text(f.src)}`, cond('src', '==', f.src)) : null,
        f.dst ? filt(`Filter dst ${text(f.dst)}`, cond('dst', '==', f.dst)) : null,
        f.proto ? filt(`Filter ${text(f.proto)}`, cond('proto', '==', f.proto)) : null,
        f.src ? h('button', { type: 'button', class: 'secondary small', onClick: () => ctx.openIp(f.src) }, `IP detail ${text(f.src)}`) : null,
        f.dst ? h('button', { type: 'button', class: 'secondary small', onClick: () => ctx.openIp(f.dst) }, `IP detail ${text(f.dst)}`) : null),
      h('h4', null, 'Encapsulation'),
      h('p', { testid: 'flow-encap' }, f.encap === null || f.encap === undefined || f.encap === '' ? 'none' : text(f.encap)),
      h('h4', null, 'Import report of its capture'),
      cap ? h('div', { testid: 'flow-capture-report' }, h('p', null, `${text(cap.name)} (${text(cap.state)})`),
        reportLines(cap.report).map((l) => h('p', { class: 'muted' }, l)), reportLines(cap.report).length ? null : h('p', { class: 'muted' }, 'clean: nothing skipped'))
        : h('p', { class: 'muted' }, `capture ${text(f.capture)}`),
      h('h4', null, 'All fields'),
      kv(FIELDS.filter((k) => k in f).map((k) => [k, h('span', { testid: `flow-field-${k}` }, text(f[k]))])));
  }

  drawHead();
  return {
    node: h('div', null,
      h('div', { class: 'view-head' }, h('p', { class: 'summary' }, totalEl, ' flows'), chooser),
      status, grid, detail),
    load: () => { detail.hidden = true; return reload(); },
  };
}
