// Overview: protocol mix (flows/bytes), destination ports, the 24-hour profile, and
// protocol→country and protocol→day Sankey diagrams. Every mark is a filter on click.
import { h } from '../dom.js';
import { chartCard, axis, plain, themeColors } from '../charts/ec.js';
import { cond, timeRange } from '../filter/lang.js';
import { switcher, fmtMetric, keyText, runAll, dayMs, dayLabel } from './common.js';
import { countryLabel } from '../charts/world.js';

export function overviewView(ctx) {
  let mixMetric = 'flows';
  const mix = chartCard('Protocol mix', { testid: 'ov-protocols', tools: [switcher('Protocol mix metric', [['flows', 'Flows'], ['bytes', 'Bytes']], 'flows', (m) => { mixMetric = m; runAll([[mix, drawMix]]); }, 'ov-mix-metric')] });
  const ports = chartCard('Destination ports', { testid: 'ov-ports' });
  const hours = chartCard('24-hour profile (UTC)', { testid: 'ov-hours', height: 260 });
  const sCountry = chartCard('Protocol → destination country', { testid: 'ov-sankey-country', height: 420 });
  const sDay = chartCard('Protocol → day', { testid: 'ov-sankey-day', height: 420 });

  async function drawMix() {
    const d = await ctx.fetch('aggregate', { by: 'proto', metrics: 'flows,bytes', top: 12, order: mixMetric });
    const rows = d.rows || [];
    if (!rows.length) return mix.empty();
    const data = rows.map((r) => ({ name: keyText(r.key[0]), value: r[mixMetric], key: r.key[0] }));
    if (d.other && d.other[mixMetric]) data.push({ name: 'other', value: d.other[mixMetric], key: null });
    mix.node.setAttribute('data-values', JSON.stringify(rows.map((r) => [r.key[0], r[mixMetric]])));
    mix.set({
      tooltip: { trigger: 'item', formatter: (p) => `${plain(p.name)}: ${fmtMetric(mixMetric, p.value)} (${p.percent}%)` },
      legend: { type: 'scroll', orient: 'vertical', right: 0, top: 10 },
      series: [{ type: 'pie', radius: ['35%', '70%'], center: ['38%', '50%'], data, label: { show: false } }],
    }, (p) => { if (p.data && p.data.key !== null) ctx.add(cond('proto', '==', p.data.key)); });
  }

  async function drawPorts() {
    const d = await ctx.fetch('aggregate', { by: 'dst.port', metrics: 'flows,bytes', top: 30 });
    const rows = (d.rows || []).filter((r) => r.key[0] !== null);
    if (!rows.length) return ports.empty();
    ports.set({
      tooltip: { formatter: (p) => `port ${plain(p.name)}: ${fmtMetric('flows', p.value)} flows` },
      series: [{
        type: 'treemap', roam: false, nodeClick: false, breadcrumb: { show: false },
        label: { formatter: (p) => plain(p.name) },
        data: rows.map((r) => ({ name: keyText(r.key[0]), value: r.flows, key: r.key[0] })),
      }],
    }, (p) => p.data && ctx.add(cond('dst.port', '==', p.data.key)));
  }

  async function drawHours() {
    const d = await ctx.fetch('aggregate', { by: 'hour', metrics: 'flows,bytes', top: 0 });
    const byHour = new Array(24).fill(0);
    for (const r of d.rows || []) if (r.key[0] >= 0 && r.key[0] < 24) byHour[r.key[0]] = r.flows;
    if (!byHour.some(Boolean)) return hours.empty();
    hours.set({
      tooltip: { trigger: 'axis', formatter: (ps) => `${ps[0].name}:00 UTC: ${fmtMetric('flows', ps[0].value)} flows` },
      grid: { left: 60, right: 20, top: 20, bottom: 30 },
      xAxis: { type: 'category', data: byHour.map((_, i) => String(i)), ...axis() },
      yAxis: { type: 'value', ...axis() },
      series: [{ type: 'bar', data: byHour }],
    }, (p) => ctx.add(cond('hour', '==', Number(p.name))));
  }

  function sankey(card, rows, right, onRight) {
    if (!rows.length) return card.empty();
    const nodes = new Map();
    const links = [];
    for (const r of rows) {
      const a = `p:${keyText(r.key[0])}`;
      const b = `r:${right(r.key[1])}`;
      nodes.set(a, { name: a, key: r.key[0], side: 'proto' });
      nodes.set(b, { name: b, key: r.key[1], side: 'right' });
      links.push({ source: a, target: b, value: r.flows });
    }
    card.set({
      tooltip: {
        trigger: 'item',
        formatter: (p) => (p.dataType === 'edge'
          ? `${plain(p.data.source.slice(2))} → ${plain(p.data.target.slice(2))}: ${fmtMetric('flows', p.data.value)} flows`
          : `${plain(p.name.slice(2))}: ${fmtMetric('flows', p.value)} flows`),
      },
      series: [{
        type: 'sankey', left: 10, right: 170, top: 10, bottom: 10, nodeGap: 6, emphasis: { focus: 'adjacency' },
        data: [...nodes.values()], links, label: { formatter: (p) => plain(p.name.slice(2)), color: themeColors().fg },
        lineStyle: { color: 'gradient', opacity: 0.35 },
      }],
    }, (p) => {
      if (p.dataType !== 'node') return;
      if (p.data.side === 'proto') ctx.add(cond('proto', '==', p.data.key));
      else if (p.data.key !== null) onRight(p.data.key);
    });
  }

  async function drawSCountry() {
    const d = await ctx.fetch('aggregate', { by: 'proto,dst.country', metrics: 'flows', top: 40 });
    sankey(sCountry, d.rows || [], countryLabel, (k) => ctx.add(cond('dst.country', '==', k)));
  }

  async function drawSDay() {
    const d = await ctx.fetch('aggregate', { by: 'proto,day', metrics: 'flows', top: 40 });
    sankey(sDay, d.rows || [], dayLabel, (k) => {
      const t = dayMs(k);
      if (t !== null) ctx.add(timeRange(t, t + 86400000));
    });
  }

  const all = [mix, ports, hours, sCountry, sDay];
  return {
    node: h('div', { class: 'grid2' }, all.map((c) => c.node)),
    load: () => runAll([[mix, drawMix], [ports, drawPorts], [hours, drawHours], [sCountry, drawSCountry], [sDay, drawSDay]]),
    dispose: () => all.forEach((c) => c.dispose()),
  };
}
