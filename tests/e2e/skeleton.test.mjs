// End to end through the real stack: HTTPS :port → nginx → FastCGI →
// capatlasd → LMDB, with a real capture from ../shared/pcaps whose figures
// are checked against capinfos and ndpiReader run on the same file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { capinfos, ndpiFlows } from '../lib/peers.mjs';
import { pcap, ROOT, startServer } from '../lib/server.mjs';

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  if (srv) await srv.stop();
});

test('health answers 200 JSON without authentication', async () => {
  const r = await srv.client().get('/api/health');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ok');
  assert.match(r.headers['content-type'], /application\/json/);
});

test('plain HTTP on the HTTPS port is redirected to HTTPS', async () => {
  const res = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: srv.port, path: '/api/health' }, resolve).on('error', reject);
  });
  res.resume();
  assert.ok([301, 302, 307, 308].includes(res.statusCode), `status ${res.statusCode}`);
  assert.match(res.headers.location, new RegExp(`^https://[^/]+:${srv.port}/api/health$`));
});

test('the SPA is served with security headers', async () => {
  const r = await srv.client().get('/');
  assert.equal(r.status, 200);
  assert.match(r.text, /<div id="app"|<script type="module"/);
  assert.match(r.headers['content-security-policy'], /script-src 'self'/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.match(r.headers['strict-transport-security'], /max-age=/);
});

test('unauthenticated API requests get 401 JSON', async () => {
  const c = srv.client();
  for (const p of ['/api/workspaces', '/api/me', '/api/jobs/1', '/api/workspaces/1/flows']) {
    const r = await c.get(p);
    assert.equal(r.status, 401, p);
    assert.equal(typeof r.json.error, 'string', p);
    assert.ok('field' in r.json, p);
  }
});

test('a wrong password is refused with the same message as an unknown user', async () => {
  const a = await srv.client().login('admin', 'not-the-password');
  const b = await srv.client().login('nobody-here', 'not-the-password');
  assert.equal(a.status, 401);
  assert.equal(b.status, 401);
  assert.equal(a.json.error, b.json.error);
});

test('state-changing requests without the CSRF token are refused', async () => {
  const c = srv.client();
  assert.equal((await c.login()).status, 200);
  const saved = c.csrf;
  c.csrf = null;
  const r = await c.post('/api/workspaces', { name: 'no-csrf' });
  assert.equal(r.status, 403);
  assert.equal(r.json.field, 'X-CSRF-Token');
  c.csrf = saved;
});

test('upload a real capture: flows and packets equal ndpiReader and capinfos', async () => {
  const c = srv.client();
  assert.equal((await c.login()).status, 200);
  const ws = await c.post('/api/workspaces', { name: 'e2e', description: 'walking skeleton' });
  assert.equal(ws.status, 201, ws.text);
  const wsId = ws.json.workspace.id;

  const files = ['http_ipv6.pcap', 'smtp.pcap'];
  let expectFlows = 0;
  for (const name of files) {
    const file = pcap(name);
    const up = await c.upload(wsId, file);
    assert.equal(up.status, 202, up.text);
    const job = await c.waitJob(up.json.job.id);
    assert.equal(job.state, 'done', JSON.stringify(job));

    const peer = capinfos(file);
    const ndpi = ndpiFlows(file);
    const caps = (await c.get(`/api/workspaces/${wsId}/captures`)).json.captures;
    const cap = caps.find((x) => x.id === up.json.capture.id);
    assert.equal(cap.state, 'ready');
    assert.equal(cap.report.packets, peer.packets, `${name}: packets vs capinfos`);
    assert.equal(cap.report.bytes, peer.bytes, `${name}: bytes vs capinfos`);
    assert.equal(cap.report.flows, ndpi, `${name}: flows vs ndpiReader`);
    expectFlows += ndpi;

    // Walk the capture's flows page by page: every packet is in exactly one flow.
    let after = 0;
    let packets = 0;
    let seen = 0;
    for (;;) {
      const r = await c.get(`/api/workspaces/${wsId}/flows?limit=7&after=${after}`);
      assert.equal(r.status, 200, r.text);
      for (const f of r.json.flows) {
        if (f.capture !== cap.id) continue;
        packets += f.packets;
        seen++;
        assert.equal(f.packets, f.sent_packets + f.recv_packets);
      }
      if (!r.json.next) break;
      after = r.json.next;
    }
    assert.equal(seen, ndpi, `${name}: flows listed`);
    assert.equal(packets, peer.packets, `${name}: packets summed over flows`);
  }
  const all = await c.get(`/api/workspaces/${wsId}/flows?limit=1`);
  assert.equal(all.json.total, expectFlows);
});

test('a file that is not a capture fails clearly and harms nothing', async () => {
  const c = srv.client();
  await c.login();
  const ws = (await c.post('/api/workspaces', { name: 'bad-input' })).json.workspace.id;
  const good = await c.upload(ws, pcap('http_ipv6.pcap'));
  assert.equal((await c.waitJob(good.json.job.id)).state, 'done');
  const before = (await c.get(`/api/workspaces/${ws}/flows?limit=1`)).json.total;

  const bad = await c.upload(ws, path.join(ROOT, 'README.md'), 'notes.pcap');
  assert.equal(bad.status, 202, bad.text);
  const job = await c.waitJob(bad.json.job.id);
  assert.equal(job.state, 'failed');
  assert.match(job.error, /not a pcap or pcapng file: bad magic 0x[0-9a-f]{8}/);

  const caps = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures;
  assert.equal(caps.find((x) => x.id === good.json.capture.id).state, 'ready');
  assert.equal(caps.find((x) => x.id === bad.json.capture.id).state, 'failed');
  assert.equal((await c.get(`/api/workspaces/${ws}/flows?limit=1`)).json.total, before);
  assert.equal((await c.get('/api/health')).status, 200);
  // No worker died on the way.
  assert.doesNotMatch(srv.log(), /died|signal 6|signal 11|AddressSanitizer|runtime error/);
});

test('an empty upload is a 400 naming the body, and no temp file is left', async () => {
  const c = srv.client();
  await c.login();
  const ws = (await c.post('/api/workspaces', { name: 'empty' })).json.workspace.id;
  const empty = path.join(srv.dataDir, 'empty.bin');
  fs.writeFileSync(empty, '');
  const r = await c.upload(ws, empty);
  assert.equal(r.status, 400, r.text);
  assert.equal(typeof r.json.error, 'string');
  assert.deepEqual(fs.readdirSync(path.join(srv.dataDir, 'tmp/body')), []);
});

test('another user cannot see a workspace (404, like an unknown id)', async () => {
  const c = srv.client();
  await c.login();
  const ws = (await c.post('/api/workspaces', { name: 'private' })).json.workspace.id;
  const up = await c.upload(ws, pcap('http_ipv6.pcap'));
  const job = up.json.job.id;
  await c.waitJob(job);
  const unknown = await c.get('/api/workspaces/999999');
  assert.equal(unknown.status, 404);
  assert.equal((await c.get(`/api/workspaces/${ws}`)).status, 200);

  const eve = await srv.userClient('eve');
  for (const p of [`/api/workspaces/${ws}`, `/api/workspaces/${ws}/captures`, `/api/workspaces/${ws}/flows`, `/api/jobs/${job}`]) {
    const r = await eve.get(p);
    assert.equal(r.status, 404, p);
    const ghost = await eve.get(p.replace(String(ws), '999999').replace(`/jobs/${job}`, '/jobs/999999'));
    assert.equal(ghost.status, 404, p);
    assert.equal(r.json.error, ghost.json.error, `${p}: same answer as an unknown id`);
  }
  const theirs = await eve.get('/api/workspaces');
  assert.ok(!theirs.json.workspaces.some((w) => w.id === ws));
  const denied = await eve.upload(ws, pcap('http_ipv6.pcap'));
  assert.equal(denied.status, 404);
});

test('logout revokes the session', async () => {
  const c = srv.client();
  await c.login();
  const cookie = c.cookie;
  assert.equal((await c.req('POST', '/api/logout')).status, 200);
  c.cookie = cookie; // replay the old cookie
  assert.equal((await c.get('/api/me')).status, 401);
});
