// Statistics: top-10 source and destination IPs by flows and by bytes (sent/received stacked),
// top protocols, top countries, and the flow-duration histogram stacked by protocol.
import { h } from '../dom.js';
import { chartCard, axis, plain } from '../charts/ec.js';
import { countryLabel, isCountryCode } from '../charts/world.js';
import { cond } from '../filter/lang.js';
import { fmtMetric, keyText, runAll } from './common.js';

function hbar(card, rows, { metrics, labels, onClick, label = keyText }) {
  if (!rows.length) return card.empty();
  const names = rows.map((r) => label(r.key[0])).reverse();
  const rev = [...rows].reverse();
  card.node.setAttribute('data-values', JSON.stringify(rows.map((r) => [r.key[0], ...metrics.map((m) => r[m])])));
  card.set({
    tooltip: {
      trigger: 'axis', axisPointer: { type: 'shadow' },
      formatter: (ps) => `${plain(ps[0].name)}\n${ps.map((p) => `${p.seriesName}: ${fmtMetric(metrics[p.seriesIndex], p.value)}`).join('\n')}`,
    },
    legend: metrics.length > 1 ? { top: 0 } : undefined,
    grid: { left: 150, right: 30, top: metrics.length > 1 ? 30 : 10, bottom: 25 },
    xAxis: { type: 'value', ...axis({ axisLabel: { formatter: (v) => fmtMetric(metrics[0], v), hideOverlap: true } }) },
    yAxis: { type: 'category', data: names, ...axis({ axisLabel: { width: 140, overflow: 'truncate' } }) },
    series: metrics.map((m, i) => ({ type: 'bar', name: labels[i], stack: 'x', data: rev.map((r) => ({ value: r[m] || 0, key: r.key[0] })) })),
  }, (p) => p.data && p.data.key !== null && onClick(p.data.key));
}

export function statisticsView(ctx) {
  const c = {
    srcFlows: chartCard('Top source IPs by flows', { testid: 'st-src-flows' }),
    srcBytes: chartCard('Top source IPs by bytes (sent / received)', { testid: 'st-src-bytes' }),
    dstFlows: chartCard('Top destination IPs by flows', { testid: 'st-dst-flows' }),
    dstBytes: chartCard('Top destination IPs by bytes (sent / received)', { testid: 'st-dst-bytes' }),
    protos: chartCard('Top protocols', { testid: 'st-protocols' }),
    countries: chartCard('Top destination countries', { testid: 'st-countries' }),
    durations: chartCard('Flow durations by protocol', { testid: 'st-durations', height: 360 }),
  };
  const agg = (by, order, metrics = 'flows,bytes,sent,recv') => ctx.fetch('aggregate', { by, metrics, top: 10, order });
  const ipClick = (f) => (k) => ctx.add(cond(f, '==', k));
  // The duration histogram groups by (bucket, protocol) over every flow, so its rows also give
  // the top protocols by flows: one request fewer for the API workers per filter change.
  let durP = null;
  const durations = () => durP || (durP = ctx.fetch('aggregate', { by: 'duration.bucket,proto', metrics: 'flows', top: 0 }));
  function topProtocols(rows) {
    const m = new Map();
    for (const r of rows) m.set(r.key[1], (m.get(r.key[1]) || 0) + r.flows);
    return [...m.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).slice(0, 10)
      .map(([k, flows]) => ({ key: [k], flows }));
  }

  const jobs = [
    [c.srcFlows, async () => hbar(c.srcFlows, (await agg('src', 'flows')).rows || [], { metrics: ['flows'], labels: ['Flows'], onClick: ipClick('src') })],
    [c.srcBytes, async () => hbar(c.srcBytes, (await agg('src', 'bytes')).rows || [], { metrics: ['sent', 'recv'], labels: ['Sent', 'Received'], onClick: ipClick('src') })],
    [c.dstFlows, async () => hbar(c.dstFlows, (await agg('dst', 'flows')).rows || [], { metrics: ['flows'], labels: ['Flows'], onClick: ipClick('dst') })],
    [c.dstBytes, async () => hbar(c.dstBytes, (await agg('dst', 'bytes')).rows || [], { metrics: ['sent', 'recv'], labels: ['Sent', 'Received'], onClick: ipClick('dst') })],
    [c.protos, async () => hbar(c.protos, topProtocols((await durations()).rows || []), { metrics: ['flows'], labels: ['Flows'], onClick: (k) => ctx.add(cond('proto', '==', k)) })],
    [c.countries, async () => hbar(c.countries, (await agg('dst.country', 'flows', 'flows,bytes')).rows || [], {
      metrics: ['flows'], labels: ['Flows'], label: countryLabel, onClick: (k) => (isCountryCode(k) || k === '--') && ctx.add(cond('dst.country', '==', k)),
    })],
    [c.durations, async () => {
      const d = await durations();
      const rows = d.rows || [];
      if (!rows.length) return c.durations.empty();
      const buckets = [...new Set(rows.map((r) => r.key[0]))];
      const num = (b) => { const m = /[\d.]+/.exec(String(b)); return m ? parseFloat(m[0]) : 0; };
      buckets.sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : num(a) - num(b)));
      const totals = new Map();
      for (const r of rows) totals.set(r.key[1], (totals.get(r.key[1]) || 0) + r.flows);
      const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map((x) => x[0]);
      const series = [...top, 'other'].map((p) => ({
        type: 'bar', stack: 'd', name: p === 'other' ? 'other' : keyText(p), proto: p,
        data: buckets.map((b) => rows.filter((r) => r.key[0] === b && (p === 'other' ? !top.includes(r.key[1]) : r.key[1] === p)).reduce((a, r) => a + r.flows, 0)),
      })).filter((s) => s.data.some(Boolean));
      c.durations.set({
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: (ps) => `${plain(ps[0].name)}\n${ps.filter((p) => p.value).map((p) => `${plain(p.seriesName)}: ${fmtMetric('flows', p.value)}`).join('\n')}` },
        legend: { type: 'scroll', top: 0 },
        grid: { left: 60, right: 20, top: 40, bottom: 40 },
        xAxis: { type: 'category', data: buckets.map(keyText), name: 'duration', nameLocation: 'middle', nameGap: 25, ...axis() },
        yAxis: { type: 'value', name: 'flows', ...axis() },
        series: series.map(({ proto, ...s }) => s),
      }, (p) => { const s = series[p.seriesIndex]; if (s && s.proto !== 'other') ctx.add(cond('proto', '==', s.proto)); });
    }],
  ];
  const all = Object.values(c);
  return {
    node: h('div', { class: 'grid2' }, all.map((x) => x.node)),
    load: () => { durP = null; return runAll(jobs); },
    dispose: () => all.forEach((x) => x.dispose()),
  };
}
