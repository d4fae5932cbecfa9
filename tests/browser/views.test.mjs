// Browser test of the analysis views (issue 7) against the real portal (nginx + capatlasd from
// tests/lib/server.mjs) in Debian's headless Chromium. Real captures from ../shared/pcaps plus one
// generated capture whose HTTP Host is an HTML-injection string are imported through the API; then
// every view is opened, screenshotted into tests/output/, and its numbers compared with the API's.
// Chart clicks must add the right condition and every view must follow; the URL must round-trip
// the filter; a bad query must show its error position; the hostile host must render as text.
// Console errors, page errors and dialogs fail the test. A documented query endpoint that the
// server does not have yet (404) is reported as pending: its view must then show the API's error.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './lib/chromium.mjs';
import { startServer } from '../lib/server.mjs';
import { writeHostilePcap, HOSTILE } from './lib/hostile-pcap.mjs';
import { pendingEndpoints, endpointOf } from './lib/pending.mjs';

const PCAPS = process.env.CAPATLAS_PCAPS || fileURLToPath(new URL('../../../shared/pcaps/', import.meta.url));
const OUT = fileURLToPath(new URL('../output/', import.meta.url));
const CAPTURES = ['android.pcap', 'http_ipv6.pcap', 'google_ssl.pcap', 'dns.pcap'];
const TABS = ['flows', 'overview', 'statistics', 'perhour', 'geo', 'ips-src', 'ips-dst', 'protocols', 'timeline', 'graph'];

let srv;
let ctx;
let profile;
let api;
let ws;
let page;
const problems = [];
let pending = new Set(); // documented endpoints the server does not route yet
let expect400 = false;

const enc = encodeURIComponent;
const byId = (id) => page.locator(`[data-testid="${id}"]`);

async function apiGet(path) {
  const r = await api.get(`/api/workspaces/${ws}/${path}`);
  return { status: r.status, json: r.json };
}

async function waitView(tab, filter = '') {
  await page.waitForFunction(([t, f]) => {
    const p = document.querySelector(`[data-testid="view-${t}"]`);
    return p && !p.hidden && p.getAttribute('data-state') === 'ready' && p.getAttribute('data-filter') === f;
  }, [tab, filter], { timeout: 30_000, polling: 100 });
}

async function openTab(tab, filter = '') {
  await page.goto(`${srv.url}/#/w/${enc(ws)}/${tab}${filter ? `?f=${enc(filter)}` : ''}`);
  await waitView(tab, filter);
}

async function shot(name) {
  await mkdir(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, `views-${name}.png`), fullPage: true });
}

before(async () => {
  srv = await startServer();
  api = srv.client();
  assert.equal((await api.login()).status, 200);
  const r = await api.post('/api/workspaces', { name: 'views', description: 'issue 7 browser test' });
  assert.equal(r.status, 201, r.text);
  ws = r.json.workspace.id;
  const tmp = await mkdtemp(join(tmpdir(), 'capatlas-hostile-'));
  const hostile = join(tmp, 'hostile.pcap');
  writeHostilePcap(hostile);
  for (const f of [...CAPTURES.map((c) => join(PCAPS, c)), hostile]) {
    const u = await api.upload(ws, f);
    assert.equal(u.status, 202, u.text);
    const job = await api.waitJob(u.json.job.id);
    assert.equal(job.state, 'done', `${f}: ${job.error}`);
  }
  await rm(tmp, { recursive: true, force: true });
  pending = await pendingEndpoints(api, ws);
  if (pending.size) console.log(`# query endpoints not on the server yet (views must show their error): ${[...pending].join(', ')}`);

  ({ ctx, profile } = await launchChromium({ height: 1000 }));
  page = ctx.pages()[0] || (await ctx.newPage());
  let loggedIn = false;
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location().url || '';
    const t = msg.text();
    if (!loggedIn && url.endsWith('/api/me') && /status of 401/.test(t)) return;
    if (/status of 404/.test(t) && pending.has(endpointOf(url))) return;
    if (expect400 && /status of 400/.test(t)) return;
    problems.push(`console error: ${t} (${url})`);
  });
  await page.goto(`${srv.url}/`);
  await byId('login-username').fill(srv.admin.username);
  await byId('login-password').fill(srv.admin.password);
  loggedIn = true;
  await byId('login-submit').click();
  await byId('logout').waitFor({ state: 'visible', timeout: 15_000 });
});

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  if (srv) await srv.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** The card's status shows the API's error text when the endpoint failed. */
async function assertErrorShown(testid, apiAnswer) {
  const status = byId(`${testid}-status`);
  await status.waitFor({ state: 'visible', timeout: 10_000 });
  const msg = apiAnswer.json && apiAnswer.json.error ? apiAnswer.json.error : `HTTP ${apiAnswer.status}`;
  assert.match(await status.textContent(), new RegExp(msg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').slice(0, 40)), `${testid} shows the API error`);
}

async function dataValues(testid) {
  return JSON.parse(await byId(testid).getAttribute('data-values'));
}

test('every view renders with the API\'s numbers; screenshots', { timeout: 240_000 }, async () => {
  // Flows: the total and the first rows agree with GET /flows.
  await openTab('flows');
  const f = await apiGet('flows?limit=5&sort=first&order=asc');
  assert.equal(f.status, 200);
  assert.equal(await byId('flows-total').getAttribute('data-value'), String(f.json.total));
  const firstRow = await page.locator('[data-testid="flow-row"]').first().locator('[role="gridcell"]').allTextContents();
  assert.ok(firstRow.includes(f.json.flows[0].src), `first row ${firstRow} has ${f.json.flows[0].src}`);
  if (!pending.has('summary')) {
    const s = await apiGet('summary');
    assert.equal(await byId('tab-flows-count').getAttribute('data-value'), String(s.json.flows));
    assert.equal(await byId('tab-ips-src-count').getAttribute('data-value'), String(s.json.src_ips));
    assert.equal(await byId('tab-ips-dst-count').getAttribute('data-value'), String(s.json.dst_ips));
  }
  // Row detail with all fields, encapsulation, the capture's import report and a pcap link.
  await page.locator('[data-testid="flow-row"]').first().click();
  await byId('flow-encap').waitFor({ timeout: 10_000 });
  assert.equal(await byId('flow-field-src').textContent(), f.json.flows[0].src);
  assert.match(await byId('flow-pcap').getAttribute('href'), /\/flows\/\d+\/pcap$/);
  await shot('flows');

  await openTab('overview');
  const mix = await apiGet('aggregate?by=proto&metrics=flows,bytes&top=12&order=flows');
  if (mix.status === 200) {
    const v = await dataValues('ov-protocols');
    assert.deepEqual(v, mix.json.rows.map((r) => [r.key[0], r.flows]));
  } else await assertErrorShown('ov-protocols', mix);
  await shot('overview');

  await openTab('statistics');
  const top = await apiGet('aggregate?by=src&metrics=flows,bytes,sent,recv&top=10&order=flows');
  if (top.status === 200) assert.deepEqual((await dataValues('st-src-flows')).map((x) => x.slice(0, 2)), top.json.rows.map((r) => [r.key[0], r.flows]));
  else await assertErrorShown('st-src-flows', top);
  await shot('statistics');

  await openTab('perhour');
  const ph = await apiGet('aggregate?by=day,hour&metrics=flows,bytes,sent,recv,packets&top=0');
  if (ph.status === 200) assert.deepEqual(await dataValues('ph-heatmap'), ph.json.rows.map((r) => [r.key[0], r.key[1], r.flows]));
  else await assertErrorShown('ph-heatmap', ph);
  await shot('perhour');

  await openTab('geo');
  const geo = await apiGet('aggregate?by=dst.country&metrics=flows,bytes,sent,recv&top=0&order=flows');
  if (geo.status === 200) assert.deepEqual(await dataValues('geo-map'), geo.json.rows.map((r) => [r.key[0], r.flows]));
  else await assertErrorShown('geo-map', geo);
  await shot('geo');

  for (const side of ['src', 'dst']) {
    await openTab(`ips-${side}`);
    const a = await apiGet(`aggregate?by=${side}&metrics=flows,bytes,sent,recv,packets&top=200&order=flows`);
    if (a.status === 200) {
      const cells = await page.locator(`[data-testid="ips-${side}-row"]`).first().locator('td').allTextContents();
      assert.equal(cells[0], String(a.json.rows[0].key[0]));
      assert.equal(cells[1].replace(/,/g, ''), String(a.json.rows[0].flows));
      assert.equal(await page.locator(`[data-testid="ips-${side}-row"]`).count(), a.json.rows.length);
    } else {
      await assertErrorShown(`ips-${side}`, a);
    }
    await shot(`ips-${side}`);
  }

  await openTab('protocols');
  const pr = await apiGet('aggregate?by=proto&metrics=flows,bytes,src_ips,dst_ips&top=60');
  if (pr.status === 200) assert.deepEqual(await dataValues('pr-bubbles'), pr.json.rows.map((r) => [r.key[0], r.flows, r.bytes, r.src_ips, r.dst_ips]));
  else await assertErrorShown('pr-bubbles', pr);
  await shot('protocols');

  await openTab('timeline');
  const tl = await apiGet('timeline?bins=150');
  if (tl.status === 200) {
    const v = await dataValues('tl-chart');
    assert.equal(v.bin_ns, tl.json.bin_ns);
    assert.equal(v.flows, tl.json.bins.reduce((a, b) => a + b.flows, 0));
  } else await assertErrorShown('tl-chart', tl);
  await shot('timeline');

  await openTab('graph');
  const gr = await apiGet('graph?max_nodes=150');
  if (gr.status === 200) {
    // one node per id (the view merges repeated ids), edges between two distinct known nodes
    const ids = new Set(gr.json.nodes.map((n) => String(n.id)));
    const edges = gr.json.edges.filter((e) => String(e.source) !== String(e.target) && ids.has(String(e.source)) && ids.has(String(e.target)));
    assert.deepEqual(await dataValues('gr-chart'), { grouping: gr.json.grouping, nodes: ids.size, edges: edges.length });
    assert.ok(await byId('gr-chart-chart').getAttribute('data-drawn'), 'the host graph is drawn');
  } else await assertErrorShown('gr-chart', gr);
  await shot('graph');

  // No chart of any view failed to draw (a chart's error is shown in its card, not on the console).
  if (!pending.size) {
    const failed = await page.evaluate(() => [...document.querySelectorAll('.chart-status.error')].filter((e) => !e.hidden)
      .map((e) => `${e.getAttribute('data-testid')}: ${e.textContent}`));
    assert.deepEqual(failed, [], 'every chart drew');
  }

  // Light and dark themes both render.
  await page.locator('[data-testid="theme-toggle"]').click();
  await waitView('graph');
  await shot('graph-theme-toggled');
  await page.locator('[data-testid="theme-toggle"]').click();
  assert.deepEqual(problems, [], 'no console errors, page errors or dialogs');
});

test('clicks add conditions (protocol slice, country, IP); every view follows; URL round-trips', { timeout: 180_000 }, async (t) => {
  // A protocol slice: click the middle of the first pie slice on the canvas.
  await openTab('overview');
  const mix = await apiGet('aggregate?by=proto&metrics=flows,bytes&top=12&order=flows');
  let filter = '';
  if (mix.status !== 200) {
    t.diagnostic('aggregate is not on the server yet: chart clicks cannot be exercised');
  } else {
    const proto = mix.json.rows[0].key[0];
    const pos = await page.evaluate(() => {
      const el = document.querySelector('[data-testid="ov-protocols-chart"]');
      const ch = el.ecInstance;
      const layout = ch.getModel().getSeriesByIndex(0).getData().getItemLayout(0);
      const mid = (layout.startAngle + layout.endAngle) / 2;
      const r = (layout.r0 + layout.r) / 2;
      const box = el.getBoundingClientRect();
      return { x: box.left + layout.cx + r * Math.cos(mid), y: box.top + layout.cy + r * Math.sin(mid) };
    });
    await page.mouse.click(pos.x, pos.y);
    filter = `proto == ${/^[\w.]+$/.test(proto) ? proto : JSON.stringify(proto)}`;
    await page.waitForFunction((f) => new URLSearchParams(location.hash.split('?')[1] || '').get('f') === f, filter, { timeout: 10_000 });
    await waitView('overview', filter);
    assert.equal(await page.locator('[data-testid="filter-chip"]').count(), 1);
    const s = await apiGet(`summary?filter=${enc(filter)}`);
    if (s.status === 200) assert.equal(await byId('filter-summary').getAttribute('data-flows'), String(s.json.flows));
  }

  // A country: the Geo map's country list (keyboard-reachable twin of the map) → detail → filter.
  await openTab('geo', filter);
  const geo = await apiGet(`aggregate?by=dst.country&metrics=flows,bytes,sent,recv&top=0&order=flows${filter ? `&filter=${enc(filter)}` : ''}`);
  if (geo.status === 200 && geo.json.rows.some((r) => /^[A-Z]{2}$/.test(r.key[0] || ''))) {
    const row = page.locator('[data-testid="geo-countries-row"]').first();
    await row.focus();
    await page.keyboard.press('Enter');
    await byId('geo-detail').waitFor({ state: 'visible' });
    const code = /\(([A-Z]{2})\)/.exec(await byId('geo-detail-title').textContent())[1];
    await byId('geo-filter').click();
    filter = filter ? `${filter} and dst.country == ${code}` : `dst.country == ${code}`;
    await waitView('geo', filter);
  } else t.diagnostic(`country click not exercised (aggregate ${geo.status})`);

  // An IP: IPs source row → IP detail dialog → filter.
  await openTab('ips-src', filter);
  const ips = await apiGet(`aggregate?by=src&metrics=flows&top=5${filter ? `&filter=${enc(filter)}` : ''}`);
  if (ips.status === 200 && ips.json.rows.length) {
    await page.locator('[data-testid="ips-src-row"]').first().click();
    await byId('ip-detail').waitFor({ state: 'visible' });
    const ip = ips.json.rows[0].key[0];
    assert.equal(await byId('ip-detail-title').textContent(), ip);
    const d = await apiGet(`ips/${enc(ip)}${filter ? `?filter=${enc(filter)}` : ''}`);
    if (d.status === 200) await page.waitForFunction(() => document.querySelector('[data-testid="ip-as-source"]'), null, { timeout: 10_000 });
    await shot('ip-detail');
    await byId('ip-detail-filter').click();
    filter = filter ? `${filter} and ip == ${ip.includes(':') ? ip : ip}` : `ip == ${ip}`;
    await waitView('ips-src', filter);
  } else t.diagnostic(`IP click not exercised (aggregate ${ips.status})`);

  // Every view follows the filter: each tab loads with it and the flows total matches the API.
  for (const tab of TABS) {
    await byId(`tab-${tab}`).click();
    await waitView(tab, filter);
  }
  const fl = await apiGet(`flows?limit=1${filter ? `&filter=${enc(filter)}` : ''}`);
  await byId('tab-flows').click();
  await waitView('flows', filter);
  if (fl.status === 200) assert.equal(await byId('flows-total').getAttribute('data-value'), String(fl.json.total));
  await shot('filtered-flows');

  // The URL round-trips: a fresh load of the link shows the same filter, chips and view.
  const url = page.url();
  const chips = await page.locator('[data-testid="filter-chip"]').count();
  await page.goto('about:blank');
  await page.goto(url);
  await waitView('flows', filter);
  assert.equal(await byId('filter-input').inputValue(), filter);
  assert.equal(await page.locator('[data-testid="filter-chip"]').count(), chips);

  // Removing a chip drops that condition; back brings it back.
  if (chips) {
    await page.locator('[data-testid="filter-chip-remove"]').last().click();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="filter-chip"]').length === n, chips - 1);
    await page.goBack();
    await waitView('flows', filter);
    assert.equal(await page.locator('[data-testid="filter-chip"]').count(), chips);
  }
  // Keyboard: arrows move between tabs.
  await byId('tab-flows').focus();
  await page.keyboard.press('ArrowRight');
  await waitView('overview', filter);
  assert.deepEqual(problems, [], 'no console errors, page errors or dialogs');
});

test('an invalid query shows the error position from the API', { timeout: 60_000 }, async (t) => {
  const bad = 'proto == TLS and and port == 443';
  const a = await apiGet(`summary?filter=${enc(bad)}`);
  await openTab('flows');
  if (a.status !== 400) {
    t.skip(`summary answers ${a.status} for a bad query: the filter language is not on the server yet`);
    return;
  }
  expect400 = true;
  await byId('filter-input').fill(bad);
  await byId('filter-apply').click();
  await byId('filter-error').waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await byId('filter-error-query').getAttribute('data-position'), String(a.json.position));
  assert.match(await byId('filter-error-message').textContent(), new RegExp(a.json.error.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await shot('filter-error');
  expect400 = false;
  assert.deepEqual(problems, []);
});

test('completion offers field names and known values', { timeout: 60_000 }, async (t) => {
  await openTab('flows');
  await byId('filter-input').fill('');
  await byId('filter-input').pressSequentially('pro');
  await page.locator('[data-testid="filter-option"]', { hasText: 'proto' }).first().waitFor({ timeout: 5_000 });
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  assert.match(await byId('filter-input').inputValue(), /^proto(\.master)? $/);
  if (pending.has('values')) { t.diagnostic('values is not on the server yet'); return; }
  await byId('filter-input').fill('proto == ');
  await byId('filter-input').press('End');
  await byId('filter-input').pressSequentially('H');
  await page.locator('[data-testid="filter-option"]').first().waitFor({ timeout: 5_000 });
  assert.deepEqual(problems, []);
});

test('an HTML-injection hostname renders as text and runs nothing', { timeout: 60_000 }, async () => {
  const filter = 'dst_port == 80';
  await page.goto(`${srv.url}/#/w/${enc(ws)}/flows`);
  await waitView('flows');
  // Find the hostile row by scrolling the virtual grid (no filter language needed).
  const found = await page.evaluate(async (host) => {
    const sc = document.querySelector('[data-testid="flows-scroll"]');
    for (let y = 0; y < 200000; y += 400) {
      sc.scrollTop = y;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const cell = [...document.querySelectorAll('[data-testid="flow-row"] [role="gridcell"]')].find((c) => c.textContent === host);
      if (cell) { cell.scrollIntoView({ block: 'center' }); return true; }
      if (y > sc.scrollHeight) break;
    }
    return false;
  }, HOSTILE);
  assert.ok(found, 'the hostile host is shown as text in the flows grid');
  await page.locator('[data-testid="flow-row"] [role="gridcell"]', { hasText: HOSTILE }).first().click();
  await byId('flow-field-host').waitFor();
  assert.equal(await byId('flow-field-host').textContent(), HOSTILE);
  assert.equal(await byId('flow-field-user_agent').textContent(), '<script>alert(2)</script>');
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was created from data');
  assert.equal(await page.locator('#app script').count(), 0);
  await shot('hostile');
  void filter;
  assert.deepEqual(problems, [], 'no dialogs (alert), console errors or page errors');
});

test('the production bundle is at most 500 KB gzipped in total', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { gzipSync } = await import('node:zlib');
  const dist = fileURLToPath(new URL('../../frontend/dist/', import.meta.url));
  const files = ['index.html', ...readdirSync(join(dist, 'assets')).map((f) => join('assets', f))];
  let total = 0;
  for (const f of files) total += gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
  console.log(`# bundle: ${files.length} files, ${(total / 1024).toFixed(1)} KiB gzipped`);
  assert.ok(total <= 500 * 1024, `${total} bytes gzipped`);
});
