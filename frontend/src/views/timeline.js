// Timeline: flows and bytes (sent/received) over time in the server's automatic bins, on the
// filtered traffic's own span. Dragging across the chart (brush) sets the time filter.
import { h } from '../dom.js';
import { chartCard, axis } from '../charts/ec.js';
import { timeRange, nsToIso } from '../filter/lang.js';
import { fmtMetric, runAll } from './common.js';

const BIN_NAMES = { 1e9: '1 s', 5e9: '5 s', 15e9: '15 s', 60e9: '1 min', 300e9: '5 min', 900e9: '15 min', 3600e9: '1 h', 21600e9: '6 h', 86400e9: '1 day', 604800e9: '1 week', 2592000e9: '30 days' };

export function timelineView(ctx) {
  const card = chartCard('Timeline', { testid: 'tl-chart', height: 460 });
  const info = h('p', { class: 'muted', testid: 'tl-info' }, 'Drag across the chart to filter to a time range.');
  let binMs = 1000;

  async function draw() {
    const d = await ctx.fetch('timeline', { bins: 150 });
    const bins = d.bins || [];
    if (!bins.length || !bins.some((b) => b.flows)) return card.empty();
    binMs = Math.max(1, d.bin_ns / 1e6);
    info.textContent = `${nsToIso(d.start_ns)} → ${nsToIso(d.end_ns)} · bins of ${BIN_NAMES[d.bin_ns] || `${d.bin_ns / 1e9} s`} · drag across the chart to filter to a time range`;
    card.node.setAttribute('data-values', JSON.stringify({ bin_ns: d.bin_ns, flows: bins.reduce((a, b) => a + b.flows, 0) }));
    const t = (b) => Math.floor(b.t / 1e6);
    card.set({
      tooltip: { trigger: 'axis', formatter: (ps) => `${new Date(ps[0].value[0]).toISOString().replace('T', ' ').replace('.000Z', ' UTC')}\n${ps.map((p) => `${p.seriesName}: ${fmtMetric(p.seriesIndex === 0 ? 'flows' : 'bytes', p.value[1])}`).join('\n')}` },
      legend: { top: 0 },
      toolbox: { show: false },
      brush: { xAxisIndex: 'all', brushType: 'lineX', brushMode: 'single', throttleType: 'debounce', throttleDelay: 300, transformable: false },
      axisPointer: { link: [{ xAxisIndex: 'all' }] },
      grid: [{ left: 80, right: 30, top: 35, height: '35%' }, { left: 80, right: 30, top: '55%', bottom: 30 }],
      xAxis: [{ type: 'time', gridIndex: 0, ...axis({ axisLabel: { show: false } }) }, { type: 'time', gridIndex: 1, ...axis() }],
      yAxis: [{ type: 'value', gridIndex: 0, name: 'flows', ...axis() }, { type: 'value', gridIndex: 1, name: 'bytes', ...axis({ axisLabel: { formatter: (v) => fmtMetric('bytes', v) } }) }],
      series: [
        { type: 'bar', name: 'Flows', xAxisIndex: 0, yAxisIndex: 0, barCategoryGap: 0, data: bins.map((b) => [t(b), b.flows]) },
        { type: 'bar', name: 'Sent', stack: 'b', xAxisIndex: 1, yAxisIndex: 1, data: bins.map((b) => [t(b), b.sent]) },
        { type: 'bar', name: 'Received', stack: 'b', xAxisIndex: 1, yAxisIndex: 1, data: bins.map((b) => [t(b), b.recv]) },
      ],
    });
    const chart = card.chart;
    chart.dispatchAction({ type: 'takeGlobalCursor', key: 'brush', brushOption: { brushType: 'lineX', brushMode: 'single' } });
    chart.off('brushEnd');
    chart.on('brushEnd', (p) => {
      const area = p.areas && p.areas[0];
      if (!area || !area.coordRange) return;
      const [a, b] = area.coordRange;
      const from = Math.floor(Math.min(a, b) / binMs) * binMs;
      const to = Math.ceil(Math.max(a, b) / binMs) * binMs;
      if (to > from) ctx.add(timeRange(from, to));
    });
  }
  return {
    node: h('div', null, info, card.node),
    load: () => runAll([[card, draw]]),
    dispose: () => card.dispose(),
  };
}
