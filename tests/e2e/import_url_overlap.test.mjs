// A URL import parses while it downloads: an HTTPS server of the test's own
// trickles a capture out in 64 KiB pieces, and the job must report parsed
// packets while the server is still sending (the engine reads the download
// out of a ring in memory, woken per 256 KiB or after 50 ms).  The same
// server checks the MD5 guard both ways: no Content-MD5, nothing claimed
// verified; a wrong one, the import fails as damaged and keeps no flows.
// An 80 MiB capture sent at full speed (more than the 64 MiB ring, the MD5
// over all of it) gives the same flows as its upload and a kept file equal
// to it, and so does a zip of it (which is read only once whole).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { testCert } from '../lib/azurite.mjs';
import { repeatCapture } from '../lib/bigcap.mjs';
import { pcap, startServer } from '../lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const FILE = pcap('1kxun.pcap');
const PIECE = 64 * 1024;
const EVERY_MS = 80;
const BIG_MB = 80;

let tmp, tls, web, srv, c, ws, big, bigZip;
let sending = null; // { sent, total } of the transfer in progress

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-overlap-'));
  tls = testCert(tmp);
  const body = fs.readFileSync(FILE);
  const md5 = crypto.createHash('md5').update(body).digest('base64');
  big = path.join(tmp, 'big.pcap');
  // its clock wraps past 2^32 s: flows a century long, hostile input the engine must take
  repeatCapture(body, big, BIG_MB * 1024 * 1024);
  bigZip = path.join(tmp, 'big.zip');
  execFileSync('zip', ['-j', '-q', '-1', bigZip, big]);
  web = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, (req, res) => {
    const u = new URL(req.url, 'https://x');
    const q = u.searchParams;
    if (u.pathname === '/big.pcap' || u.pathname === '/big.zip') {
      // at full speed, from the file
      const file = u.pathname === '/big.pcap' ? big : bigZip;
      const data = fs.readFileSync(file);
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': data.length,
        'Content-MD5': crypto.createHash('md5').update(data).digest('base64'),
      });
      res.end(data);
      return;
    }
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

// The corpus capture's records repeated (timestamps shifted) to `target` bytes.
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
  assert.equal(sha256(path.join(srv.dataDir, `workspaces/${ws}/captures/${cap.id}.cap`)), sha256(FILE));
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

test(`a ${BIG_MB} MiB capture at full speed and a zip of it: the flows of an upload`, async () => {
  const up = await c.upload(ws, big);
  assert.equal(up.status, 202, up.text);
  const local = await c.waitJob(up.json.job.id);
  assert.equal(local.state, 'done', JSON.stringify(local));
  const caps0 = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures;
  const localCap = caps0.find((x) => x.id === up.json.capture.id);
  assert.ok(localCap.report.flows > 0);

  for (const name of ['big.pcap', 'big.zip']) {
    const r = await c.post(`/api/workspaces/${ws}/imports`, { url: `https://127.0.0.1:${web.address().port}/${name}` });
    assert.equal(r.status, 202, r.text);
    const job = await c.waitJob(r.json.job.id);
    assert.equal(job.state, 'done', `${name}: ${JSON.stringify(job)}`);
    let id = r.json.capture.id;
    if (name === 'big.zip') {
      assert.equal(job.result.captures.length, 1, JSON.stringify(job.result));
      assert.equal((await c.waitJob(job.result.jobs[0])).state, 'done');
      id = job.result.captures[0];
    }
    const got = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures.filter((x) => x.id === id);
    assert.equal(got.length, 1, name);
    assert.equal(got[0].report.flows, localCap.report.flows, name);
    if (name === 'big.pcap') {
      assert.equal(got[0].size, fs.statSync(big).size);
      assert.equal(got[0].report.md5_verified, true);
      // the kept file (what a flow's pcap export reads) is the download, byte for byte: it
      // went through the ring the engine read, which it outgrew, and to disk a MiB at a time
      assert.equal(sha256(path.join(srv.dataDir, `workspaces/${ws}/captures/${id}.cap`)), sha256(big));
    }
  }
});
