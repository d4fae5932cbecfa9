// A URL import parses while it downloads: an HTTPS server of the test's own
// trickles a capture out in 64 KiB pieces, and the job must report parsed
// packets while the server is still sending (the download is gathered into
// bigger writes, but never held back long).  The same server checks the
// MD5 guard both ways: no Content-MD5, nothing claimed verified; a wrong
// one, the import fails as damaged and keeps no flows.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { testCert } from '../lib/azurite.mjs';
import { pcap, startServer } from '../lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const FILE = pcap('1kxun.pcap');
const PIECE = 64 * 1024;
const EVERY_MS = 80;

let tmp, tls, web, srv, c, ws;
let sending = null; // { sent, total } of the transfer in progress

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-overlap-'));
  tls = testCert(tmp);
  const body = fs.readFileSync(FILE);
  const md5 = crypto.createHash('md5').update(body).digest('base64');
  web = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, (req, res) => {
    const q = new URL(req.url, 'https://x').searchParams;
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length };
    if (q.get('md5') === 'good') headers['Content-MD5'] = md5;
    if (q.get('md5') === 'bad') headers['Content-MD5'] = crypto.createHash('md5').update('other').digest('base64');
    res.writeHead(200, headers);
    const st = { sent: 0, total: body.length };
    sending = st;
    const tick = () => {
      if (res.destroyed) return;
      const n = Math.min(PIECE, body.length - st.sent);
      res.write(body.subarray(st.sent, st.sent + n));
      st.sent += n;
      if (st.sent < body.length) setTimeout(tick, EVERY_MS);
      else res.end();
    };
    tick();
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  srv = await startServer({ env: { CAPATLAS_FETCH_ALLOW_HOSTS: '127.0.0.1', CAPATLAS_FETCH_CA_FILE: tls.cert } });
  c = srv.client();
  assert.equal((await c.login()).status, 200);
  ws = (await c.post('/api/workspaces', { name: 'overlap' })).json.workspace.id;
});

after(async () => {
  if (srv) await srv.stop();
  if (web) web.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function importAndWatch(query) {
  const url = `https://127.0.0.1:${web.address().port}/1kxun.pcap?${query}`;
  const r = await c.post(`/api/workspaces/${ws}/imports`, { url });
  assert.equal(r.status, 202, r.text);
  let parsedMidway = 0;
  for (;;) {
    const st = sending;
    const midway = st !== null && st.sent < st.total;
    const job = (await c.get(`/api/jobs/${r.json.job.id}`)).json.job;
    if (midway && sending === st && st.sent < st.total) parsedMidway = Math.max(parsedMidway, job.packets_done || 0);
    if (job.state === 'done' || job.state === 'failed') {
      const caps = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures;
      return { job, cap: caps.find((x) => x.id === r.json.capture.id), parsedMidway };
    }
    await sleep(100);
  }
}

test('packets are parsed while a slow download is still coming in', async () => {
  const up = await c.upload(ws, FILE);
  assert.equal(up.status, 202, up.text);
  const local = await c.waitJob(up.json.job.id);
  assert.equal(local.state, 'done', JSON.stringify(local));
  const localCap = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures.find((x) => x.id === up.json.capture.id);

  const { job, cap, parsedMidway } = await importAndWatch('md5=none');
  assert.equal(job.state, 'done', JSON.stringify(job));
  assert.ok(parsedMidway > 0, 'the job reported parsed packets before the download ended');
  assert.equal(cap.size, fs.statSync(FILE).size);
  assert.equal(cap.report.flows, localCap.report.flows);
  assert.equal(cap.report.md5_verified, undefined, 'no MD5 was announced, none is claimed verified');
});

test('an announced MD5 is checked: right, the capture is kept; wrong, the import fails as damaged', async () => {
  const good = await importAndWatch('md5=good');
  assert.equal(good.job.state, 'done', JSON.stringify(good.job));
  assert.equal(good.cap.report.md5_verified, true);

  const bad = await importAndWatch('md5=bad');
  assert.equal(bad.job.state, 'failed', JSON.stringify(bad.job));
  assert.match(bad.job.error, /damaged: its MD5 is/);
  assert.equal(bad.cap.state, 'failed');
  const flows = (await c.get(`/api/workspaces/${ws}/flows?filter=${encodeURIComponent(`capture == ${bad.cap.id}`)}`)).json;
  assert.equal((flows.flows || []).length, 0, JSON.stringify(flows).slice(0, 300));
});
