// Geo map: a choropleth of countries (source, destination or both; flows, bytes, sent, received)
// drawn from bundled geometry. Private and unlocated traffic is listed beside the map. A click on a
// country opens its detail (flows, sent/received share, its IPs) with a button to filter to it.
import { h, replace, fmtInt } from '../dom.js';
import { chartCard, plain, themeColors } from '../charts/ec.js';
import { loadWorld, countryName, countryLabel, isCountryCode } from '../charts/world.js';
import { cond } from '../filter/lang.js';
import { switcher, fmtMetric, keyText, runAll, dataTable, kv } from './common.js';

const DIR = { src: 'src.country', dst: 'dst.country', both: 'country' };

export function geoView(ctx) {
  let dir = 'dst';
  let metric = 'flows';
  let rowsByCode = new Map();
  const map = chartCard('Countries', {
    testid: 'geo-map', height: 480,
    tools: [
      switcher('Direction', [['src', 'Source'], ['dst', 'Destination'], ['both', 'Both']], dir, (v) => { dir = v; redraw(); }, 'geo-dir'),
      switcher('Metric', [['flows', 'Flows'], ['bytes', 'Bytes'], ['sent', 'Sent'], ['recv', 'Received']], metric, (v) => { metric = v; redraw(); }, 'geo-metric'),
    ],
  });
  const apart = h('div', { class: 'card', testid: 'geo-apart' });
  const detail = h('div', { class: 'card', testid: 'geo-detail', hidden: true });
  const list = h('div', { class: 'card scroll-y', testid: 'geo-list' });
  const field = () => DIR[dir];
  const redraw = () => runAll([[map, draw]]);

  async function draw() {
    const [d] = await Promise.all([ctx.fetch('aggregate', { by: field(), metrics: 'flows,bytes,sent,recv', top: 0, order: metric }), loadWorld()]);
    const rows = d.rows || [];
    rowsByCode = new Map();
    const off = [];
    for (const r of rows) {
      const k = r.key[0];
      if (isCountryCode(k)) rowsByCode.set(k, r);
      else off.push(r);
    }
    map.node.setAttribute('data-values', JSON.stringify(rows.map((r) => [r.key[0], r[metric]])));
    replace(apart, h('h3', null, 'Not on the map (private, unknown)'),
      off.length ? dataTable([
        { label: 'Where', get: (r) => countryLabel(r.key[0]) },
        { label: 'Flows', num: true, get: (r) => fmtInt(r.flows) },
        { label: 'Bytes', num: true, get: (r) => fmtMetric('bytes', r.bytes) },
      ], off, { testid: 'geo-apart-table', onActivate: (r) => r.key[0] && ctx.add(cond(field(), '==', r.key[0])) }) : h('p', { class: 'muted' }, 'none'));
    const located = [...rowsByCode.values()];
    replace(list, h('h3', null, 'Countries'), dataTable([
      { label: 'Country', get: (r) => `${countryName(r.key[0])} (${r.key[0]})` },
      { label: 'Flows', num: true, get: (r) => fmtInt(r.flows) },
      { label: 'Bytes', num: true, get: (r) => fmtMetric('bytes', r.bytes) },
      { label: 'Sent', num: true, get: (r) => fmtMetric('sent', r.sent) },
      { label: 'Received', num: true, get: (r) => fmtMetric('recv', r.recv) },
    ], located, { testid: 'geo-countries', onActivate: (r) => openCountry(r.key[0]), caption: 'Traffic by country' }));
    if (!rows.length) return map.empty();
    const c = themeColors();
    const max = Math.max(1, ...[...rowsByCode.values()].map((r) => r[metric] || 0));
    map.set({
      tooltip: {
        trigger: 'item',
        formatter: (p) => {
          const r = rowsByCode.get(p.name);
          return r ? `${plain(countryName(p.name))} (${p.name}): ${fmtMetric('flows', r.flows)} flows, ${fmtMetric('bytes', r.bytes)}`
            : `${plain(countryName(p.name))}: no traffic`;
        },
      },
      visualMap: { min: 0, max, left: 10, bottom: 10, calculable: false, text: ['more', 'less'], textStyle: { color: c.muted },
        inRange: { color: ['#d6e6f5', '#6baed6', '#2171b5', '#08306b'] }, outOfRange: { color: c.line } },
      series: [{
        type: 'map', map: 'world', roam: true, nameProperty: 'name', label: { show: false }, emphasis: { label: { show: false } },
        itemStyle: { borderColor: c.card, areaColor: c.line }, selectedMode: false,
        data: [...rowsByCode.values()].map((r) => ({ name: r.key[0], value: r[metric] })),
      }],
    }, (p) => { if (rowsByCode.has(p.name)) openCountry(p.name); });
  }

  async function openCountry(code) {
    const r = rowsByCode.get(code);
    const term = cond(field(), '==', code);
    detail.hidden = false;
    const ipBox = h('div', null, h('p', { class: 'muted' }, 'Loading its IPs…'));
    const total = (r.sent || 0) + (r.recv || 0);
    const share = (v) => (total ? `${((100 * v) / total).toFixed(1)}%` : '–');
    replace(detail,
      h('div', { class: 'chart-head' }, h('h3', { testid: 'geo-detail-title' }, `${countryName(code)} (${code})`),
        h('div', { class: 'tools' },
          h('button', { type: 'button', testid: 'geo-filter', onClick: () => ctx.add(term) }, `Filter ${term}`),
          h('button', { type: 'button', class: 'secondary small', onClick: () => { detail.hidden = true; } }, 'Close'))),
      kv([['Flows', h('span', { testid: 'geo-detail-flows' }, fmtInt(r.flows))], ['Bytes', fmtMetric('bytes', r.bytes)],
        ['Sent (client → server)', `${fmtMetric('sent', r.sent)} (${share(r.sent)})`],
        ['Received (server → client)', `${fmtMetric('recv', r.recv)} (${share(r.recv)})`]]),
      h('h4', null, 'Its IPs'), ipBox);
    const ipField = dir === 'src' ? 'src' : dir === 'dst' ? 'dst' : 'ip';
    try {
      const d = await ctx.fetchWith(term, 'aggregate', { by: ipField, metrics: 'flows,bytes', top: 20 });
      replace(ipBox, dataTable([
        { label: 'IP', cls: 'addr', get: (x) => keyText(x.key[0]) },
        { label: 'Flows', num: true, get: (x) => fmtInt(x.flows) },
        { label: 'Bytes', num: true, get: (x) => fmtMetric('bytes', x.bytes) },
      ], d.rows || [], { testid: 'geo-ips', onActivate: (x) => ctx.openIp(x.key[0]) }));
    } catch (e) {
      replace(ipBox, h('p', { class: 'error' }, e.message));
    }
  }

  return {
    node: h('div', null, map.node, h('div', { class: 'grid2' }, detail, list, apart)),
    load: () => { detail.hidden = true; return runAll([[map, draw]]); },
    dispose: () => map.dispose(),
  };
}
