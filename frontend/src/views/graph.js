// Host graph: hosts (or /24 networks or ASNs when the server groups a large graph) as nodes sized
// by bytes, edges by flows; a click on a node filters to it, on an edge to the pair.
import { h } from '../dom.js';
import { chartCard, plain, PALETTE, themeColors } from '../charts/ec.js';
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
    const nodes = d.nodes || [];
    const edges = d.edges || [];
    info.textContent = `${nodes.length} nodes, ${edges.length} edges${d.grouping && d.grouping !== 'host' ? ` — grouped by ${d.grouping} because the graph is large` : ''}`;
    if (!nodes.length) return card.empty();
    card.node.setAttribute('data-values', JSON.stringify({ grouping: d.grouping, nodes: nodes.length, edges: edges.length }));
    const maxB = Math.max(1, ...nodes.map((n) => n.bytes || 0));
    const maxF = Math.max(1, ...edges.map((e) => e.flows || 0));
    const countries = [...new Set(nodes.map((n) => n.country || '–'))];
    card.set({
      tooltip: {
        formatter: (p) => (p.dataType === 'edge'
          ? `${plain(p.data.source)} → ${plain(p.data.target)}: ${fmtMetric('flows', p.data.flows)} flows, ${fmtMetric('bytes', p.data.bytes)}`
          : `${plain(p.data.label0)}${p.data.country ? ` (${plain(p.data.country)})` : ''}: ${fmtMetric('flows', p.data.flows)} flows, ${fmtMetric('bytes', p.data.bytes)}`),
      },
      series: [{
        type: 'graph', layout: 'force', roam: true, draggable: true,
        force: { repulsion: 120, edgeLength: [40, 160], gravity: 0.08, layoutAnimation: false },
        label: { show: nodes.length <= 60, position: 'right', formatter: (p) => plain(p.data.label0), color: themeColors().fg, fontSize: 10 },
        lineStyle: { opacity: 0.5, curveness: 0.1 },
        emphasis: { focus: 'adjacency' },
        data: nodes.map((n) => ({
          id: String(n.id), name: String(n.id), label0: keyText(n.label ?? n.id), flows: n.flows, bytes: n.bytes, country: n.country,
          symbolSize: 6 + 34 * Math.sqrt((n.bytes || 0) / maxB), itemStyle: { color: PALETTE[countries.indexOf(n.country || '–') % PALETTE.length] },
        })),
        edges: edges.map((e) => ({ source: String(e.source), target: String(e.target), flows: e.flows, bytes: e.bytes, lineStyle: { width: 0.5 + 5 * Math.sqrt((e.flows || 0) / maxF) } })),
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
