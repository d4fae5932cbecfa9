// Host graph: hosts (or /24 networks or ASNs when the server groups a large graph) as nodes sized
// by bytes, edges by flows; a click on a node filters to it, on an edge to the pair. Positions come
// from a bounded force layout run before drawing (charts/force-layout.js), not from ECharts' simulation.
import { h } from '../dom.js';
import { chartCard, plain, PALETTE, themeColors } from '../charts/ec.js';
import { forceLayout } from '../charts/force-layout.js';
import { cond } from '../filter/lang.js';
import { fmtMetric, keyText, runAll } from './common.js';

export function graphView(ctx) {
  const card = chartCard('Host graph', { testid: 'gr-chart', height: 600 });
  const info = h('p', { class: 'muted', testid: 'gr-info' });

  function termFor(grouping, id) {
    if (grouping === 'asn') return cond('asn', '==', Number(id) || id);
    return cond('ip', '==', id); // a host, or a /24 written as a CIDR
  }

  async function draw() {
    const d = await ctx.fetch('graph', { max_nodes: 150 });
    // One node per id (a repeated id, e.g. two groups with the same key, is merged: ECharts
    // cannot draw a graph with duplicate node ids) and only the edges between known nodes.
    const byId = new Map();
    for (const n of d.nodes || []) {
      const id = String(n.id);
      const o = byId.get(id);
      if (o) { o.flows = (o.flows || 0) + (n.flows || 0); o.bytes = (o.bytes || 0) + (n.bytes || 0); } else byId.set(id, { ...n, id });
    }
    const nodes = [...byId.values()].sort((a, b) => (b.bytes || 0) - (a.bytes || 0));
    const edges = (d.edges || []).map((e) => ({ ...e, source: String(e.source), target: String(e.target) }))
      .filter((e) => e.source !== e.target && byId.has(e.source) && byId.has(e.target));
    info.textContent = `${nodes.length} nodes, ${edges.length} edges${d.grouping && d.grouping !== 'host' ? ` — grouped by ${d.grouping} because the graph is large` : ''}`;
    if (!nodes.length) return card.empty();
    card.node.setAttribute('data-values', JSON.stringify({ grouping: d.grouping, nodes: nodes.length, edges: edges.length }));
    const maxB = Math.max(1, ...nodes.map((n) => n.bytes || 0));
    const maxF = Math.max(1, ...edges.map((e) => e.flows || 0));
    const countries = [...new Set(nodes.map((n) => n.country || '–'))];
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const size = nodes.map((n) => 6 + 34 * Math.sqrt((n.bytes || 0) / maxB));
    const pos = forceLayout(nodes.length, edges.map((e) => [index.get(e.source), index.get(e.target), Math.sqrt((e.flows || 0) / maxF)]), { sizes: size.map((s) => s / 2) });
    card.set({
      tooltip: {
        formatter: (p) => (p.dataType === 'edge'
          ? `${plain(p.data.source)} → ${plain(p.data.target)}: ${fmtMetric('flows', p.data.flows)} flows, ${fmtMetric('bytes', p.data.bytes)}`
          : `${plain(p.data.label0)}${p.data.country ? ` (${plain(p.data.country)})` : ''}: ${fmtMetric('flows', p.data.flows)} flows, ${fmtMetric('bytes', p.data.bytes)}`),
      },
      series: [{
        type: 'graph', layout: 'none', roam: true, draggable: true,
        label: { show: nodes.length <= 60, position: 'right', formatter: (p) => plain(p.data.label0), color: themeColors().fg, fontSize: 10 },
        lineStyle: { opacity: 0.5, curveness: 0.1 },
        emphasis: { focus: 'adjacency' },
        data: nodes.map((n, i) => ({
          id: n.id, name: n.id, label0: keyText(n.label ?? n.id), flows: n.flows, bytes: n.bytes, country: n.country,
          x: pos[2 * i], y: pos[2 * i + 1],
          symbolSize: size[i], itemStyle: { color: PALETTE[countries.indexOf(n.country || '–') % PALETTE.length] },
        })),
        edges: edges.map((e) => ({ source: e.source, target: e.target, flows: e.flows, bytes: e.bytes, lineStyle: { width: 0.5 + 5 * Math.sqrt((e.flows || 0) / maxF) } })),
      }],
    }, (p) => {
      if (p.dataType === 'node') ctx.add(termFor(d.grouping, p.data.id));
      else if (p.dataType === 'edge' && (d.grouping || 'host') === 'host') ctx.add(`${cond('src', '==', p.data.source)} and ${cond('dst', '==', p.data.target)}`);
    });
  }
  return {
    node: h('div', null, info, card.node),
    load: () => runAll([[card, draw]]),
    dispose: () => card.dispose(),
  };
}
