// One workspace: its captures and imports, the filter bar, and the analysis views as tabs.
// The route is #/w/<id>/<view>?f=<filter>: the filter lives in the URL, so back/forward and
// shared links restore it. Each view reads ctx.filter and is reloaded when the filter changes.
import { h, replace, fmtInt, text } from '../dom.js';
import { get } from '../api.js';
import { filterBar } from '../filter/bar.js';
import { addTerm } from '../filter/lang.js';
import { capturesPanel } from './captures.js';
import { qs } from './common.js';
import { flowsView } from './flows.js';
import { overviewView } from './overview.js';
import { statisticsView } from './statistics.js';
import { perHourView } from './perhour.js';
import { geoView } from './geo.js';
import { ipsView } from './ips.js';
import { protocolsView } from './protocols.js';
import { timelineView } from './timeline.js';
import { graphView } from './graph.js';
import { openIpDetail } from './ipdetail.js';

export const TABS = [
  { id: 'flows', label: 'Flows', count: 'flows', make: flowsView },
  { id: 'overview', label: 'Overview', make: overviewView },
  { id: 'statistics', label: 'Statistics', make: statisticsView },
  { id: 'perhour', label: 'Per hour', make: perHourView },
  { id: 'geo', label: 'Geo map', make: geoView },
  { id: 'ips-src', label: 'IPs source', count: 'src_ips', make: (ctx) => ipsView(ctx, 'src') },
  { id: 'ips-dst', label: 'IPs destination', count: 'dst_ips', make: (ctx) => ipsView(ctx, 'dst') },
  { id: 'protocols', label: 'Protocols', make: protocolsView },
  { id: 'timeline', label: 'Timeline', make: timelineView },
  { id: 'graph', label: 'Host graph', make: graphView },
];

export function wsHash(wsId, tab, filter) {
  return `#/w/${encodeURIComponent(wsId)}/${tab}${filter ? `?f=${encodeURIComponent(filter)}` : ''}`;
}

export const perf = [];
if (typeof window !== 'undefined') window.__capatlasPerf = perf;

export function workspaceView(wsId, route) {
  let alive = true;
  const isAlive = () => alive;
  const base = `/api/workspaces/${encodeURIComponent(wsId)}`;
  let tab = TABS.some((t) => t.id === route.tab) ? route.tab : 'flows';
  let filter = route.filter || '';
  const views = new Map(); // tab id → { view, panel, loaded: filter|null }
  let loadSeq = 0;
  // One controller per filter change / tab switch: a newer one cancels the requests still in
  // flight for the previous, so a stale answer neither draws nor holds the browser's connection.
  let ac = new AbortController();
  let loading = null; // the view entry whose load is in flight

  const heading = h('h1', { tabindex: -1, testid: 'ws-name' }, 'Workspace');
  const desc = h('p', { class: 'muted' });
  const pageErr = h('p', { class: 'error', role: 'alert', hidden: true });
  const captures = capturesPanel(wsId, base, { isAlive, onChange: () => { invalidate(); refresh(); } });
  const capsSection = h('details', { class: 'captures', testid: 'captures-section', open: true },
    h('summary', null, h('h2', { id: 'captures-h' }, 'Captures and imports')), captures.node);

  const ctx = {
    base, wsId,
    get filter() { return filter; },
    get captures() { return captures.captures; },
    /** The current load's cancellation signal (for views that call the API themselves). */
    get signal() { return ac.signal; },
    fetch: (path, params = {}) => get(`${base}/${path}${qs({ filter: filter || undefined, ...params })}`, { signal: ac.signal }),
    /** The same, narrowed by one more condition (detail panels). */
    fetchWith: (term, path, params = {}) => get(`${base}/${path}${qs({ filter: addTerm(filter, term), ...params })}`),
    add: (term) => go(tab, addTerm(filter, term)),
    setFilter: (q) => go(tab, q),
    openIp: (ip) => openIpDetail(ctx, ip),
    go: (t, q = filter) => go(t, q),
  };

  const bar = filterBar({ base, onApply: (q) => go(tab, q) });

  const tabBtns = TABS.map((t) => h('button', {
    type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-controls': `panel-${t.id}`, testid: `tab-${t.id}`,
    onClick: () => go(t.id, filter),
  }, h('span', null, t.label), t.count ? h('span', { class: 'count', testid: `tab-${t.id}-count` }) : null));
  const tablist = h('div', {
    class: 'tabs', role: 'tablist', 'aria-label': 'Views',
    onKeydown: (ev) => {
      const i = tabBtns.indexOf(document.activeElement);
      if (i < 0) return;
      let j = null;
      if (ev.key === 'ArrowRight') j = (i + 1) % TABS.length;
      else if (ev.key === 'ArrowLeft') j = (i - 1 + TABS.length) % TABS.length;
      else if (ev.key === 'Home') j = 0;
      else if (ev.key === 'End') j = TABS.length - 1;
      if (j === null) return;
      ev.preventDefault();
      tabBtns[j].focus();
      go(TABS[j].id, filter);
    },
  }, tabBtns);
  const panels = h('div', { class: 'panels' });
  const totals = h('p', { class: 'summary', testid: 'filter-summary', 'aria-live': 'polite' });

  const exportLink = (fmt, label) => h('a', { class: 'button secondary small', testid: `export-${fmt}`, download: '' }, label);
  const exports = { csv: exportLink('csv', 'CSV'), jsonl: exportLink('jsonl', 'JSON'), pcap: exportLink('pcap', 'pcap') };
  const shareBtn = h('button', {
    type: 'button', class: 'secondary small', testid: 'copy-link',
    onClick: async () => {
      try { await navigator.clipboard.writeText(location.href); shareBtn.textContent = 'Link copied'; } catch { shareBtn.textContent = 'Copy the address bar'; }
      setTimeout(() => { shareBtn.textContent = 'Copy link'; }, 2000);
    },
  }, 'Copy link');
  const toolbar = h('div', { class: 'toolbar' }, totals,
    h('div', { class: 'tools', role: 'group', 'aria-label': 'Export the filtered flows' },
      h('span', { class: 'muted' }, 'Export filtered flows:'), exports.csv, exports.jsonl, exports.pcap, shareBtn));

  get(base).then((d) => {
    if (!alive) return;
    heading.textContent = text(d.workspace.name);
    desc.textContent = text(d.workspace.description);
    document.title = `${text(d.workspace.name)} · capatlas`;
  }, (e) => {
    if (!alive) return;
    pageErr.textContent = e.status === 404 ? 'This workspace does not exist or is not shared with you.' : e.message;
    pageErr.hidden = false;
  });

  function go(t, q) {
    const target = wsHash(wsId, t, q);
    if (location.hash === target) refresh();
    else location.hash = target;
  }

  function invalidate() {
    for (const v of views.values()) v.loaded = null;
  }

  async function summary() {
    const my = loadSeq;
    try {
      const s = await ctx.fetch('summary');
      if (!alive || my !== loadSeq) return;
      totals.textContent = `${fmtInt(s.flows)} flows · ${fmtInt(s.ips)} IPs${filter ? ' match the filter' : ''}`;
      totals.setAttribute('data-flows', String(s.flows));
      for (const t of TABS) {
        if (!t.count) continue;
        const el = tablist.querySelector(`[data-testid="tab-${t.id}-count"]`);
        el.textContent = fmtInt(s[t.count]);
        el.setAttribute('data-value', String(s[t.count]));
      }
    } catch (e) {
      if (!alive || my !== loadSeq || e.aborted) return;
      if (e.status === 400 && e.field === 'filter') bar.error(filter, e);
      totals.textContent = `Cannot count the flows: ${e.message}`;
      for (const el of tablist.querySelectorAll('.count')) { el.textContent = ''; el.removeAttribute('data-value'); }
    }
  }

  async function refresh() {
    const my = ++loadSeq;
    // The mark is set first: the time measured runs from the filter change to the view drawn.
    const mark = `capatlas-load-${my}`;
    performance.mark(mark);
    performance.clearMeasures('capatlas-draw'); // the charts' draw times of the previous load
    ac.abort();
    ac = new AbortController();
    if (loading) { loading.loaded = null; loading = null; } // cancelled half-way: load again when shown
    bar.update(filter);
    for (const [fmt, a] of Object.entries(exports)) a.setAttribute('href', `${base}/export${qs({ filter: filter || undefined, format: fmt })}`);
    tabBtns.forEach((b, i) => {
      const on = TABS[i].id === tab;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
    });
    summary();
    let v = views.get(tab);
    if (!v) {
      const def = TABS.find((t) => t.id === tab);
      const panel = h('div', { role: 'tabpanel', id: `panel-${tab}`, 'aria-labelledby': `tab-${tab}`, class: 'panel', testid: `view-${tab}` });
      const view = def.make(ctx);
      panel.append(view.node);
      panels.append(panel);
      v = { view, panel, loaded: null };
      views.set(tab, v);
    }
    for (const [id, o] of views) o.panel.hidden = id !== tab;
    if (v.loaded === filter) return;
    v.loaded = filter;
    loading = v;
    v.panel.setAttribute('data-state', 'loading');
    try {
      await v.view.load(filter);
    } catch (e) {
      if (e && e.status === 400 && e.field === 'filter' && my === loadSeq) bar.error(filter, e);
    }
    if (!alive || my !== loadSeq) { performance.clearMarks(mark); return; }
    loading = null;
    const m = performance.measure(`capatlas:${tab}`, mark);
    performance.clearMarks(mark);
    perf.push({ view: tab, filter, ms: Math.round(m.duration) });
    v.panel.setAttribute('data-state', 'ready');
    v.panel.setAttribute('data-filter', filter);
    v.panel.setAttribute('data-ms', String(Math.round(m.duration)));
  }

  const onTheme = () => { invalidate(); refresh(); };
  window.addEventListener('capatlas-theme', onTheme);
  refresh();

  return {
    wsId,
    node: h('div', { class: 'workspace' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← All workspaces')),
      heading, desc, pageErr, capsSection,
      h('section', { class: 'analysis', 'aria-label': 'Analysis' }, bar.node, toolbar, tablist, panels)),
    focus: heading,
    /** Same workspace, new tab or filter (hashchange): no rebuild. */
    update(r) {
      const t = TABS.some((x) => x.id === r.tab) ? r.tab : 'flows';
      const f = r.filter || '';
      if (t === tab && f === filter) return;
      tab = t;
      filter = f;
      refresh();
    },
    dispose: () => {
      alive = false;
      ac.abort();
      window.removeEventListener('capatlas-theme', onTheme);
      captures.dispose();
      for (const o of views.values()) if (o.view.dispose) o.view.dispose();
      document.querySelectorAll('dialog.ip-detail').forEach((d) => d.remove());
    },
  };
}
