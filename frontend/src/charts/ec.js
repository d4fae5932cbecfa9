// The one charting library of the SPA: ECharts, imported part by part through echarts/core so the
// bundle carries only the charts the views draw. Every chart is drawn on canvas and its tooltips
// use renderMode 'richText' (drawn on the canvas too), so no capture-derived string ever reaches
// innerHTML and no inline style attribute is created (the CSP has no 'unsafe-inline').
import * as echarts from 'echarts/core';
import {
  PieChart, BarChart, LineChart, HeatmapChart, MapChart, SankeyChart, ScatterChart, GraphChart, TreemapChart,
} from 'echarts/charts';
import {
  TooltipComponent, GridComponent, LegendComponent, VisualMapComponent, BrushComponent, ToolboxComponent,
  GeoComponent, TitleComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { h } from '../dom.js';

echarts.use([
  PieChart, BarChart, LineChart, HeatmapChart, MapChart, SankeyChart, ScatterChart, GraphChart, TreemapChart,
  TooltipComponent, GridComponent, LegendComponent, VisualMapComponent, BrushComponent, ToolboxComponent,
  GeoComponent, TitleComponent, CanvasRenderer,
]);

export { echarts };

/** Theme colours from the CSS custom properties, so charts follow the light/dark switch. */
export function themeColors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n, d) => (cs.getPropertyValue(n) || '').trim() || d;
  return {
    fg: v('--fg', '#1b1f24'), muted: v('--muted', '#5b6570'), line: v('--line', '#d5dae0'),
    card: v('--card', '#ffffff'), accent: v('--accent', '#1d6fb8'),
  };
}

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
  '#9c755f', '#bab0ac', '#1f77b4', '#17becf', '#bcbd22', '#8c564b'];

/** Rich-text markup characters in data would be read as style tags by richText tooltips. */
export function plain(s) {
  return String(s ?? '').replace(/[{}|]/g, ' ');
}

function baseOption(option) {
  const c = themeColors();
  return {
    backgroundColor: 'transparent',
    color: PALETTE,
    animation: false,
    textStyle: { color: c.fg, fontFamily: 'system-ui, sans-serif' },
    ...option,
    legend: option.legend ? { textStyle: { color: c.fg }, pageTextStyle: { color: c.muted }, ...option.legend } : undefined,
    tooltip: option.tooltip === false ? undefined : {
      renderMode: 'richText', confine: true, backgroundColor: c.card, borderColor: c.line,
      textStyle: { color: c.fg }, ...(option.tooltip || {}),
    },
  };
}

/** Axis styling for the current theme. */
export function axis(extra = {}) {
  const c = themeColors();
  return {
    axisLine: { lineStyle: { color: c.line } },
    axisLabel: { color: c.muted, hideOverlap: true },
    splitLine: { lineStyle: { color: c.line, opacity: 0.5 } },
    ...extra,
  };
}

/** An option's structure: its components and each series' type, stack, name and axes. */
function shapeOf(o) {
  const list = (x) => (Array.isArray(x) ? x : x ? [x] : []);
  return JSON.stringify([
    Object.keys(o).filter((k) => o[k] !== undefined).sort(),
    list(o.series).map((x) => [x.type, x.stack, x.name, x.xAxisIndex, x.yAxisIndex, x.layout]),
    list(o.xAxis).map((x) => x.type), list(o.yAxis).map((x) => x.type),
  ]);
}

/**
 * A chart card: a titled box with a PNG button. chartCard(title, { testid, height }) returns
 * { node, set(option, onClick), chart, dispose }. onClick(params) gets ECharts' click params.
 */
export function chartCard(title, { testid, height = 320, tools = [] } = {}) {
  const box = h('div', { class: 'chart', testid: testid ? `${testid}-chart` : null, role: 'img', 'aria-label': title });
  box.style.height = `${height}px`;
  const status = h('p', { class: 'muted chart-status', testid: testid ? `${testid}-status` : null, 'aria-live': 'polite' });
  let chart = null;
  let clickFn = null;
  let shape = null; // the last option's structure: same structure → merge, else replace
  const png = h('button', {
    type: 'button', class: 'secondary small', title: `Download “${title}” as PNG`, testid: testid ? `${testid}-png` : null,
    onClick: () => {
      if (!chart) return;
      const url = chart.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: themeColors().card });
      const a = h('a', { href: url, download: `${title.replace(/[^\w.-]+/g, '_')}.png` });
      document.body.append(a);
      a.click();
      a.remove();
    },
  }, 'PNG');
  const node = h('section', { class: 'card chart-card', testid },
    h('div', { class: 'chart-head' }, h('h3', null, title), h('div', { class: 'tools' }, tools, png)),
    status, box);
  const ro = new ResizeObserver(() => chart && chart.resize());
  ro.observe(box);

  function ensure() {
    if (!chart) {
      chart = echarts.init(box, null, { renderer: 'canvas' });
      chart.on('click', (p) => clickFn && clickFn(p));
      box.ecInstance = chart; // lets the browser tests find where a mark is drawn
    }
    return chart;
  }
  return {
    node,
    get chart() { return chart; },
    loading(msg = 'Loading…') {
      status.textContent = msg;
      status.className = 'muted chart-status';
      status.hidden = false;
      box.classList.add('dim');
    },
    error(msg) {
      status.textContent = msg;
      status.className = 'error chart-status';
      status.hidden = false;
      box.classList.add('dim');
      if (chart) chart.clear();
      shape = null;
    },
    empty(msg = 'No flows match the filter.') {
      status.textContent = msg;
      status.className = 'muted chart-status';
      status.hidden = false;
      box.classList.add('dim');
      if (chart) chart.clear();
      shape = null;
    },
    set(option, onClick) {
      status.hidden = true;
      box.classList.remove('dim');
      clickFn = onClick || null;
      // The chart instance lives as long as the card. Replacing the whole option (notMerge) rebuilds
      // every component; only needed when the structure changes (other series, axes, components).
      const key = shapeOf(option);
      const t0 = performance.now();
      ensure().setOption(baseOption(option), { notMerge: key !== shape, lazyUpdate: false });
      // the chart's own drawing time (setOption lays out and paints the canvas synchronously),
      // for the views bench's split of a view's time into server, drawing and the rest
      performance.measure('capatlas-draw', { start: t0, detail: testid || title });
      shape = key;
      box.setAttribute('data-drawn', String(Date.now()));
    },
    dispose() {
      ro.disconnect();
      if (chart) chart.dispose();
      chart = null;
      shape = null;
    },
  };
}
