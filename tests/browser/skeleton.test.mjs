// Browser skeleton test: the real portal (nginx + capatlasd from tests/lib/server.mjs) driven by
// Debian's headless Chromium through playwright-core. Logs in as the admin, creates a workspace,
// uploads a real capture through the file input, waits for the import job, and checks that the
// flows table agrees with the API. Any console error or page error fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './lib/chromium.mjs';
import { startServer } from '../lib/server.mjs';
import { pendingEndpoints, endpointOf } from './lib/pending.mjs';

// The shared captures sit beside the repository (CAPATLAS_PCAPS overrides, as in tests/run.sh).
const PCAPS = process.env.CAPATLAS_PCAPS || fileURLToPath(new URL('../../../shared/pcaps/', import.meta.url));
const PCAP = join(PCAPS, 'http_ipv6.pcap');
const OUT = fileURLToPath(new URL('../output/', import.meta.url));

let srv;
let ctx;
let profile;
let pending = new Set();
// A 404 of a documented query endpoint the server does not have yet (see lib/pending.mjs).
const pendingLog = (msg) => /status of 404/.test(msg.text()) && pending.has(endpointOf(msg.location().url));

before(async () => {
  srv = await startServer();
  const c = srv.client();
  await c.login();
  const w = await c.post('/api/workspaces', { name: 'probe' });
  pending = await pendingEndpoints(c, w.json.workspace.id);
  ({ ctx, profile } = await launchChromium({ height: 900 }));
});

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  if (srv) await srv.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test('log in, create a workspace, upload a capture, see its flows', { timeout: 180_000 }, async () => {
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  let loggedIn = false;
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error' || pendingLog(msg)) return;
    const url = msg.location().url || '';
    // Before login the SPA's session probe (GET /api/me) is answered 401 by design, and
    // Chromium logs every 4xx response as a console error.
    if (!loggedIn && url.endsWith('/api/me') && /status of 401/.test(msg.text())) return;
    problems.push(`console error: ${msg.text()} (${url})`);
  });
  const byId = (id) => page.locator(`[data-testid="${id}"]`);

  await page.goto(`${srv.url}/`);
  await byId('login-username').fill(srv.admin.username);
  await byId('login-password').fill(srv.admin.password);
  loggedIn = true;
  await byId('login-submit').click();
  await byId('logout').waitFor({ state: 'visible', timeout: 15_000 });

  // A hostile name: it must come back as text, never as markup.
  const wsName = `skeleton <img src=x onerror=alert(1)> ${Date.now()}`;
  await byId('ws-create-name').fill(wsName);
  await byId('ws-create-submit').click();
  await page.waitForURL(/#\/w\/[^/]+$/, { timeout: 15_000 });
  const wsId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/w\//, ''));
  assert.ok(wsId, 'workspace id in the URL');
  await page.locator('h1', { hasText: wsName }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('img').count(), 0, 'the workspace name was not parsed as HTML');

  await byId('upload-input').setInputFiles(PCAP);
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid="job-state"]');
    return s && (s.textContent === 'done' || s.textContent === 'failed');
  }, null, { timeout: 120_000, polling: 200 });
  const jobState = await byId('job-state').first().textContent();
  const jobError = (await byId('job-error').first().isVisible()) ? await byId('job-error').first().textContent() : '';
  assert.equal(jobState, 'done', `import job ended ${jobState}: ${jobError}`);
  assert.equal(await byId('upload-progress').first().evaluate((p) => p.value), 100, 'upload progress at 100%');

  // The flows grid reloads when the capture becomes ready; wait for real rows.
  await page.waitForFunction(
    () => document.querySelectorAll('[data-testid="flows-table"] [data-testid="flow-row"]').length > 0,
    null, { timeout: 15_000 });
  const rows = await page.locator('[data-testid="flows-table"] [data-testid="flow-row"]').count();
  assert.ok(rows >= 1, `flows table has ${rows} rows`);

  const api = await page.evaluate(async (ws) => {
    const r = await fetch(`/api/workspaces/${encodeURIComponent(ws)}/flows?limit=1`, { credentials: 'same-origin' });
    return { status: r.status, body: await r.json() };
  }, wsId);
  assert.equal(api.status, 200);
  assert.equal(typeof api.body.total, 'number');
  assert.ok(api.body.total >= 1, `API total ${api.body.total}`);
  assert.equal((await byId('flows-total').textContent()).trim(), String(api.body.total));
  assert.equal(rows, Math.min(rows, api.body.total), 'no more rows than flows (the grid draws the rows in sight)');

  // The captures table shows the capture as ready with its packet and flow counts.
  const capRow = page.locator('[data-testid="captures-table"] tbody tr').first();
  await page.waitForFunction(
    () => /ready/.test(document.querySelector('[data-testid="captures-table"] tbody tr')?.textContent || ''),
    null, { timeout: 10_000 });
  assert.match(await capRow.textContent(), /http_ipv6\.pcap/);

  await mkdir(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, 'skeleton-flows.png'), fullPage: true });

  // Back on the list, the new workspace is there with its capture.
  await page.getByRole('link', { name: /All workspaces/ }).click();
  const row = byId('ws-list').locator('[data-testid="ws-row"]', { hasText: wsName });
  await row.waitFor({ state: 'visible', timeout: 10_000 });

  assert.deepEqual(problems, [], 'no console errors or page errors');
});

test('errors are shown in the API\'s words: wrong password, a file that is not a capture', { timeout: 120_000 }, async () => {
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error' || pendingLog(msg)) return;
    const url = msg.location().url || '';
    // The wrong password is answered 401 on purpose; Chromium logs it.
    if (url.endsWith('/api/login') && /status of 401/.test(msg.text())) return;
    problems.push(`console error: ${msg.text()} (${url})`);
  });
  const byId = (id) => page.locator(`[data-testid="${id}"]`);

  // The session from the first test is restored by GET /api/me; log out of it.
  await page.goto(`${srv.url}/`);
  await byId('logout').click();
  await byId('login-username').fill(srv.admin.username);
  await byId('login-password').fill(`${srv.admin.password}-wrong`);
  await byId('login-submit').click();
  await byId('login-error').waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await byId('login-error').textContent(), /wrong username or password/);

  await byId('login-password').fill(srv.admin.password);
  await byId('login-submit').click();
  await byId('logout').waitFor({ state: 'visible', timeout: 10_000 });

  await byId('ws-create-name').fill('bad input');
  await byId('ws-create-submit').click();
  await page.waitForURL(/#\/w\/[^/]+$/, { timeout: 15_000 });
  await byId('upload-input').setInputFiles({
    name: 'notes.pcap',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from('<html><body>not a capture</body></html>\n'),
  });
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid="job-state"]');
    return s && (s.textContent === 'done' || s.textContent === 'failed');
  }, null, { timeout: 60_000, polling: 200 });
  assert.equal(await byId('job-state').first().textContent(), 'failed');
  const err = byId('job-error').first();
  assert.ok(await err.isVisible(), 'the job error is shown');
  assert.match(await err.textContent(), /not a pcap/i);
  await page.waitForFunction(
    () => /failed/.test(document.querySelector('[data-testid="captures-table"] tbody tr')?.textContent || ''),
    null, { timeout: 10_000 });
  assert.match(await page.locator('[data-testid="captures-table"] tbody tr').first().textContent(), /notes\.pcap.*failed.*not a pcap/is);
  assert.equal((await byId('flows-total').textContent()).trim(), '0');

  await mkdir(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, 'skeleton-errors.png'), fullPage: true });
  assert.deepEqual(problems, [], 'no console errors or page errors');
  await page.close();
});

test('the flows grid scrolls through every flow like the API pages them', { timeout: 120_000 }, async () => {
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !pendingLog(msg)) problems.push(`console error: ${msg.text()} (${msg.location().url})`);
  });
  const byId = (id) => page.locator(`[data-testid="${id}"]`);

  await page.goto(`${srv.url}/`); // still logged in from the previous test
  // Keep only 2 pages of 500 rows (synscan has 4), so that scrolling drops pages and fetches them again.
  await page.evaluate(() => localStorage.setItem('capatlas.flowsKeepPages', '2'));
  await byId('ws-create-name').fill('paging');
  await byId('ws-create-submit').click();
  await page.waitForURL(/#\/w\/[^/]+$/, { timeout: 15_000 });
  const wsId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/w\//, ''));
  await byId('upload-input').setInputFiles(join(PCAPS, 'synscan.pcap'));
  await page.waitForFunction(() => document.querySelector('[data-testid="job-state"]')?.textContent === 'done',
    null, { timeout: 90_000, polling: 200 });
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="flows-total"]')?.getAttribute('data-value')) > 100,
    null, { timeout: 15_000 });

  // All flows through the API in its own pages of 1000.
  const all = await page.evaluate(async (ws) => {
    const out = [];
    let after = null;
    let total = 0;
    do {
      const page = after === null ? '' : `&${typeof after === 'number' ? 'after' : 'cursor'}=${encodeURIComponent(after)}`;
      const q = `/api/workspaces/${encodeURIComponent(ws)}/flows?limit=1000${page}`;
      const d = await (await fetch(q, { credentials: 'same-origin' })).json();
      out.push(...d.flows.map((f) => f.src));
      after = d.next;
      total = d.total;
    } while (after !== null && after !== undefined);
    return { total, srcs: out };
  }, wsId);
  assert.ok(all.total > 100, `synscan has ${all.total} flows`);
  assert.equal(all.srcs.length, all.total);
  assert.equal((await byId('flows-total').textContent()).trim(), String(all.total));

  // Scroll the grid to the end (it fetches the next pages as it goes) and read the last row.
  const last = await page.evaluate(async (total) => {
    const sc = document.querySelector('[data-testid="flows-scroll"]');
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    for (let i = 0; i < 400; i++) {
      sc.scrollTop = sc.scrollHeight;
      await frame();
      await new Promise((r) => setTimeout(r, 20));
      const rows = document.querySelectorAll('[data-testid="flow-row"]');
      const lastRow = rows[rows.length - 1];
      if (lastRow && Number(lastRow.getAttribute('aria-rowindex')) === total) {
        return { index: total, cells: [...lastRow.querySelectorAll('[role="gridcell"]')].map((c) => c.textContent) };
      }
    }
    return null;
  }, all.total);
  assert.ok(last, 'the grid reached the last flow');
  assert.ok(last.cells.includes(all.srcs[all.total - 1]), `last row ${last.cells} has ${all.srcs[all.total - 1]}`);
  assert.equal(await page.locator('[data-testid="flow-row"]').count() < 200, true, 'only the rows in sight are in the DOM');

  // Only the pages near the view were kept; the first comes back, by its cursor, when scrolled to.
  assert.ok(all.total > 1500, `synscan spans ${all.total} flows, more than 3 pages`);
  assert.equal(await byId('flows-table').getAttribute('data-pages'), '2', 'two pages held at the end');
  const top = await page.evaluate(async () => {
    const sc = document.querySelector('[data-testid="flows-scroll"]');
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    sc.scrollTop = 0;
    for (let i = 0; i < 200; i++) {
      await frame();
      await new Promise((r) => setTimeout(r, 20));
      const row = document.querySelector('[data-testid="flow-row"][aria-rowindex="1"]');
      if (row) return [...row.querySelectorAll('[role="gridcell"]')].map((c) => c.textContent);
    }
    return null;
  });
  assert.ok(top, 'the first row came back');
  assert.ok(top.includes(all.srcs[0]), `first row ${top} has ${all.srcs[0]}`);
  assert.equal(await byId('flows-table').getAttribute('data-pages'), '2', 'still two pages held');
  await page.evaluate(() => localStorage.removeItem('capatlas.flowsKeepPages'));

  assert.deepEqual(problems, [], 'no console errors or page errors');
  await page.close();
});
