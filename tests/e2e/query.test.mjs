// Query endpoints through the real stack (nginx + FastCGI + LMDB) on a real
// capture: filter errors with positions, summary vs the flows list,
// aggregates adding up, cursor paging, streamed exports (CSV/JSONL line
// counts, pcap packet counts checked with capinfos), capture delete.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { pcap, startServer } from '../lib/server.mjs';

let srv, c, ws, cap;
const q = (p, params = {}) => `/api/workspaces/${ws}/${p}?${new URLSearchParams(params)}`;

before(async () => {
  srv = await startServer();
  c = srv.client();
  assert.equal((await c.login()).status, 200);
  const r = await c.post('/api/workspaces', { name: 'query' });
  ws = r.json.workspace.id;
  const up = await c.upload(ws, pcap('android.pcap'));
  assert.equal(up.status, 202, up.text);
  cap = up.json.capture.id;
  const job = await c.waitJob(up.json.job.id);
  assert.equal(job.state, 'done', JSON.stringify(job));
});
after(async () => {
  if (srv) await srv.stop();
});

test('a bad filter is 400 with field "filter" and the column of the bad token', async () => {
  const r = await c.get(q('summary', { filter: 'port == 443 and bogus > 1' }));
  assert.equal(r.status, 400);
  assert.equal(r.json.field, 'filter');
  assert.equal(r.json.position, 16);
  assert.match(r.json.error, /bogus/);
});

test('summary equals the flows list, filtered and not', async () => {
  const all = [];
  let after = 0;
  for (;;) {
    const r = await c.get(`/api/workspaces/${ws}/flows?limit=1000&after=${after}`);
    all.push(...r.json.flows);
    if (!r.json.next) break;
    after = r.json.next;
  }
  const s = (await c.get(q('summary'))).json;
  assert.equal(s.flows, all.length);
  assert.equal(s.bytes, all.reduce((a, f) => a + f.bytes, 0));
  assert.equal(s.src_ips, new Set(all.map((f) => f.src)).size);
  const tls = (await c.get(q('summary', { filter: 'proto == TLS and bytes > 1KB' }))).json;
  const want = all.filter((f) => (f.proto || '').split('.').includes('TLS') && f.bytes > 1000);
  assert.equal(tls.flows, want.length);
  assert.ok(want.length > 0);
});

test('aggregate top-N plus other adds up to the total; timeline bins add up', async () => {
  const a = (await c.get(q('aggregate', { by: 'proto', metrics: 'flows,bytes', top: 3 }))).json;
  assert.deepEqual(a.by, ['proto']);
  assert.ok(a.rows.length <= 3);
  const sum = a.rows.reduce((x, r) => x + r.flows, 0) + (a.other ? a.other.flows : 0);
  assert.equal(sum, a.total.flows);
  const t = (await c.get(q('timeline', { bins: 50 }))).json;
  assert.equal(t.bins.reduce((x, b) => x + b.flows, 0), a.total.flows);
  assert.ok(t.bins.length <= 51);
  const bad = await c.get(q('aggregate', { by: 'nope' }));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, 'by');
});

test('flows sorted by bytes page through with cursors, no row twice', async () => {
  const ids = new Set();
  let cursor = null, prev = Infinity, total = 0;
  for (;;) {
    const p = { sort: 'bytes', order: 'desc', limit: 7, columns: 'bytes,src' };
    if (cursor) p.cursor = cursor;
    const r = await c.get(q('flows', p));
    assert.equal(r.status, 200, r.text);
    total = r.json.total;
    for (const f of r.json.flows) {
      assert.ok(!ids.has(f.id));
      ids.add(f.id);
      assert.ok(f.bytes <= prev);
      prev = f.bytes;
      assert.equal(f.dst, undefined);
    }
    if (!r.json.next) break;
    cursor = r.json.next;
  }
  assert.equal(ids.size, total);
});

test('ip detail, graph and values answer', async () => {
  const top = (await c.get(q('aggregate', { by: 'src', top: 1 }))).json.rows[0].key[0];
  const d = await c.get(`/api/workspaces/${ws}/ips/${encodeURIComponent(top)}`);
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.ip, top);
  assert.ok(d.json.as_source.flows > 0);
  assert.equal(d.json.hours.length, 24);
  const g = (await c.get(q('graph', { max_nodes: 10 }))).json;
  assert.ok(g.nodes.length <= 10);
  const v = (await c.get(q('values', { field: 'proto', prefix: 't' }))).json;
  for (const x of v.values) assert.match(String(x.value), /^t/i);
});

test('exports stream CSV, JSON lines and pcap of the filtered flows', async () => {
  const filter = 'l4 == udp';
  const n = (await c.get(q('summary', { filter }))).json.flows;
  const csv = await c.get(q('export', { filter, format: 'csv' }));
  assert.equal(csv.status, 200);
  assert.match(csv.headers['content-disposition'], /attachment/);
  assert.equal(csv.text.trim().split('\r\n').length, n + 1);
  const jl = await c.get(q('export', { filter, format: 'jsonl' }));
  const lines = jl.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, n);
  assert.ok(lines.every((f) => f.l4 === 'udp'));
  // pcap of one flow and of the filtered set: packet counts agree with capinfos
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-exp-'));
  const pk = (file) =>
    Number(/Number of packets:\s+(\d+)/.exec(execFileSync('capinfos', ['-c', file], { encoding: 'utf8' }))[1]);
  const raw = (p) =>
    new Promise((resolve, reject) => {
      import('node:https').then((https) => {
        const u = new URL(p, srv.url);
        https.get(u, { ca: srv.ca, headers: { Cookie: c.cookie }, checkServerIdentity: () => undefined }, (res) => {
          const b = [];
          res.on('data', (d) => b.push(d));
          res.on('end', () => resolve(Buffer.concat(b)));
        }).on('error', reject);
      });
    });
  const f1 = lines.find((f) => f.packets > 1) || lines[0];
  fs.writeFileSync(path.join(tmp, 'one.pcap'), await raw(`/api/workspaces/${ws}/flows/${f1.id}/pcap`));
  assert.equal(pk(path.join(tmp, 'one.pcap')), f1.packets);
  fs.writeFileSync(path.join(tmp, 'all.pcap'), await raw(q('export', { filter, format: 'pcap' })));
  assert.equal(pk(path.join(tmp, 'all.pcap')), lines.reduce((a, f) => a + f.packets, 0));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('deleting a capture removes its flows from every answer', async () => {
  const r = await c.req('DELETE', `/api/workspaces/${ws}/captures/${cap}`);
  assert.equal(r.status, 200, r.text);
  assert.equal((await c.get(q('summary'))).json.flows, 0);
  assert.equal((await c.get(q('flows'))).json.flows.length, 0);
});
