// A bounded force-directed layout for the host graph, computed before the chart is drawn, so
// ECharts draws fixed positions (layout 'none') instead of running its own simulation to
// convergence inside setOption (hundreds of steps, each re-laying the chart's elements).
// Fruchterman–Reingold: all-pairs repulsion, attraction along edges, a pull to the centre, and a
// cooling step size; it stops after `iterations` or when `budgetMs` is spent, whichever is first.
// Deterministic: the start is a sunflower spiral ordered by the caller (the heaviest first).

/**
 * nodes: count; edges: [[i, j, weight 0..1]]; returns Float64Array [x0, y0, x1, y1, ...] in a
 * square of side ~ sqrt(n) * 100 around 0.
 */
export function forceLayout(n, edges, { iterations = 150, budgetMs = 25, sizes = null } = {}) {
  const pos = new Float64Array(2 * n);
  const disp = new Float64Array(2 * n);
  const side = Math.sqrt(Math.max(1, n)) * 100;
  const golden = Math.PI * (3 - Math.sqrt(5));
  for (let i = 0; i < n; i++) {
    const r = (side / 2) * Math.sqrt((i + 0.5) / n);
    pos[2 * i] = r * Math.cos(i * golden);
    pos[2 * i + 1] = r * Math.sin(i * golden);
  }
  const k = side / Math.sqrt(Math.max(1, n)); // ideal distance
  const k2 = k * k;
  let t = side / 10;
  const cool = t / (iterations + 1);
  const t0 = performance.now();
  for (let it = 0; it < iterations; it++) {
    disp.fill(0);
    for (let i = 0; i < n; i++) {
      const xi = pos[2 * i];
      const yi = pos[2 * i + 1];
      const si = sizes ? sizes[i] : 0;
      for (let j = i + 1; j < n; j++) {
        let dx = xi - pos[2 * j];
        let dy = yi - pos[2 * j + 1];
        let d2 = dx * dx + dy * dy;
        if (d2 < 1e-6) { dx = 0.01 * (i - j); dy = 0.01; d2 = dx * dx + dy * dy; }
        const pad = sizes ? si + sizes[j] : 0; // big symbols push harder
        const f = (k2 + pad * pad) / d2;
        disp[2 * i] += dx * f;
        disp[2 * i + 1] += dy * f;
        disp[2 * j] -= dx * f;
        disp[2 * j + 1] -= dy * f;
      }
    }
    for (const [a, b, w] of edges) {
      const dx = pos[2 * a] - pos[2 * b];
      const dy = pos[2 * a + 1] - pos[2 * b + 1];
      const d = Math.sqrt(dx * dx + dy * dy) || 0.01;
      const f = (d / k) * (0.5 + w);
      disp[2 * a] -= dx * f;
      disp[2 * a + 1] -= dy * f;
      disp[2 * b] += dx * f;
      disp[2 * b + 1] += dy * f;
    }
    for (let i = 0; i < n; i++) {
      // gravity keeps components that have no edge between them from drifting apart
      disp[2 * i] -= pos[2 * i] * 0.05;
      disp[2 * i + 1] -= pos[2 * i + 1] * 0.05;
      const dx = disp[2 * i];
      const dy = disp[2 * i + 1];
      const d = Math.sqrt(dx * dx + dy * dy);
      if (d > 0) {
        const step = Math.min(d, t) / d;
        pos[2 * i] += dx * step;
        pos[2 * i + 1] += dy * step;
      }
    }
    t = Math.max(t - cool, side / 1000);
    if (performance.now() - t0 > budgetMs) break;
  }
  return pos;
}
