// Protocols: a bubble chart, one bubble per protocol, with switchable x, y and size among flows,
// bytes, distinct sources and distinct destinations. A click filters to the protocol.
import { h } from '../dom.js';
import { chartCard, axis, plain, themeColors } from '../charts/ec.js';
import { cond } from '../filter/lang.js';
import { switcher, fmtMetric, keyText, runAll, METRICS } from './common.js';

const AX = [['flows', 'Flows'], ['bytes', 'Bytes'], ['src_ips', 'Sources'], ['dst_ips', 'Destinations']];

export function protocolsView(ctx) {
  const sel = { x: 'flows', y: 'bytes', size: 'src_ips' };
  let rows = [];
  const card = chartCard('Protocols', {
    testid: 'pr-bubbles', height: 480,
    tools: [
      h('span', { class: 'muted' }, 'x'), switcher('x axis', AX, sel.x, (v) => { sel.x = v; paint(); }, 'pr-x'),
      h('span', { class: 'muted' }, 'y'), switcher('y axis', AX, sel.y, (v) => { sel.y = v; paint(); }, 'pr-y'),
      h('span', { class: 'muted' }, 'size'), switcher('bubble size', AX, sel.size, (v) => { sel.size = v; paint(); }, 'pr-size'),
    ],
  });

  async function draw() {
    const d = await ctx.fetch('aggregate', { by: 'proto', metrics: 'flows,bytes,src_ips,dst_ips', top: 60 });
    rows = d.rows || [];
    paint();
  }

  function paint() {
    if (!rows.length) return card.empty();
    card.node.setAttribute('data-values', JSON.stringify(rows.map((r) => [r.key[0], r.flows, r.bytes, r.src_ips, r.dst_ips])));
    const maxS = Math.max(1, ...rows.map((r) => r[sel.size] || 0));
    const log = (m) => (m === 'bytes' || m === 'flows' ? 'log' : 'value');
    card.set({
      tooltip: {
        formatter: (p) => `${plain(p.data.name)}\n${AX.map(([m, l]) => `${l}: ${fmtMetric(m, p.data.row[m])}`).join('\n')}`,
      },
      grid: { left: 80, right: 40, top: 20, bottom: 50 },
      xAxis: { type: log(sel.x), name: METRICS[sel.x].label, nameLocation: 'middle', nameGap: 30, ...axis({ axisLabel: { formatter: (v) => fmtMetric(sel.x, v) } }) },
      yAxis: { type: log(sel.y), name: METRICS[sel.y].label, ...axis({ axisLabel: { formatter: (v) => fmtMetric(sel.y, v) } }) },
      series: [{
        type: 'scatter',
        data: rows.map((r) => ({ name: keyText(r.key[0]), key: r.key[0], row: r, value: [Math.max(1, r[sel.x] || 0), Math.max(1, r[sel.y] || 0)] })),
        symbolSize: (v, p) => 8 + 50 * Math.sqrt((p.data.row[sel.size] || 0) / maxS),
        label: { show: true, position: 'top', formatter: (p) => plain(p.data.name), color: themeColors().fg, fontSize: 11 },
        itemStyle: { opacity: 0.7 },
      }],
    }, (p) => p.data && p.data.key !== null && ctx.add(cond('proto', '==', p.data.key)));
  }

  return {
    node: h('div', null, card.node),
    load: () => runAll([[card, draw]]),
    dispose: () => card.dispose(),
  };
}
