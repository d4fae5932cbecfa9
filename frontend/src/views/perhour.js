// Per hour: a days × hours (UTC) heat map with a metric switch. A click on a cell opens that
// hour's detail (counts, top protocols, top talkers) with a button to filter to it.
import { h, replace, fmtInt } from '../dom.js';
import { chartCard, axis, plain, themeColors } from '../charts/ec.js';
import { timeRange } from '../filter/lang.js';
import { switcher, fmtMetric, keyText, runAll, dayMs, dayLabel, dataTable, kv } from './common.js';

export function perHourView(ctx) {
  let metric = 'flows';
  let rows = [];
  const card = chartCard('Traffic per day and hour (UTC)', {
    testid: 'ph-heatmap', height: 420,
    tools: [switcher('Metric', [['flows', 'Flows'], ['bytes', 'Bytes'], ['sent', 'Sent'], ['recv', 'Received'], ['packets', 'Packets']], metric, (m) => { metric = m; paint(); }, 'ph-metric')],
  });
  const detail = h('div', { class: 'card', testid: 'ph-detail', hidden: true });

  async function draw() {
    const d = await ctx.fetch('aggregate', { by: 'day,hour', metrics: 'flows,bytes,sent,recv,packets', top: 0 });
    rows = d.rows || [];
    paint();
  }

  function paint() {
    if (!rows.length) return card.empty();
    const days = [...new Set(rows.map((r) => r.key[0]))].sort((a, b) => (dayMs(a) ?? 0) - (dayMs(b) ?? 0));
    const di = new Map(days.map((d, i) => [d, i]));
    const data = rows.map((r) => [Number(r.key[1]), di.get(r.key[0]), r[metric] || 0, r.key[0]]);
    const max = Math.max(1, ...data.map((x) => x[2]));
    card.node.setAttribute('data-values', JSON.stringify(rows.map((r) => [r.key[0], r.key[1], r[metric]])));
    const c = themeColors();
    card.set({
      tooltip: { formatter: (p) => `${dayLabel(p.data[3])} ${String(p.data[0]).padStart(2, '0')}:00 UTC: ${fmtMetric(metric, p.data[2])} ${metric === 'flows' ? 'flows' : ''}` },
      grid: { left: 100, right: 20, top: 10, bottom: 70 },
      xAxis: { type: 'category', data: [...Array(24).keys()].map(String), splitArea: { show: true }, ...axis() },
      yAxis: { type: 'category', data: days.map(dayLabel), splitArea: { show: true }, ...axis() },
      visualMap: { min: 0, max, orient: 'horizontal', left: 'center', bottom: 5, calculable: false, textStyle: { color: c.muted },
        inRange: { color: ['#e0ecf4', '#9ebcda', '#8856a7', '#4d004b'] } },
      series: [{ type: 'heatmap', data, emphasis: { itemStyle: { borderColor: c.fg, borderWidth: 1 } } }],
    }, (p) => openHour(p.data[3], p.data[0]));
  }

  async function openHour(day, hour) {
    const t = dayMs(day);
    if (t === null) return;
    const from = t + hour * 3600000;
    const term = timeRange(from, from + 3600000);
    detail.hidden = false;
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    replace(detail,
      h('div', { class: 'chart-head' }, h('h3', { testid: 'ph-detail-title' }, `${dayLabel(day)} ${String(hour).padStart(2, '0')}:00–${String(hour + 1).padStart(2, '0')}:00 UTC`),
        h('div', { class: 'tools' },
          h('button', { type: 'button', testid: 'ph-filter', onClick: () => ctx.add(term) }, 'Filter to this hour'),
          h('button', { type: 'button', class: 'secondary small', onClick: () => { detail.hidden = true; } }, 'Close'))),
      body);
    try {
      const [s, p, src] = await Promise.all([
        ctx.fetchWith(term, 'summary'),
        ctx.fetchWith(term, 'aggregate', { by: 'proto', metrics: 'flows,bytes', top: 10 }),
        ctx.fetchWith(term, 'aggregate', { by: 'src', metrics: 'flows,bytes', top: 10 }),
      ]);
      const cols = (l) => [{ label: l, get: (r) => keyText(r.key[0]) }, { label: 'Flows', num: true, get: (r) => fmtInt(r.flows) }, { label: 'Bytes', num: true, get: (r) => fmtMetric('bytes', r.bytes) }];
      replace(body,
        kv([['Flows', h('span', { testid: 'ph-detail-flows' }, fmtInt(s.flows))], ['Bytes', fmtMetric('bytes', s.bytes)], ['IPs', fmtInt(s.ips)]]),
        h('div', { class: 'grid2' },
          h('div', null, h('h4', null, 'Protocols'), dataTable(cols('Protocol'), p.rows || [], { testid: 'ph-protocols' })),
          h('div', null, h('h4', null, 'Sources'), dataTable(cols('Source'), src.rows || [], { testid: 'ph-sources', onActivate: (r) => ctx.openIp(r.key[0]) }))));
    } catch (e) {
      replace(body, h('p', { class: 'error' }, e.message));
    }
  }

  return {
    node: h('div', null, card.node, detail),
    load: () => { detail.hidden = true; return runAll([[card, draw]]); },
    dispose: () => card.dispose(),
  };
}
