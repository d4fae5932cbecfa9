// URL imports against Azurite (the real emulator, over HTTPS, strict SAS
// validation): one blob, a container listing with a selection, expired and
// wrongly signed SAS links, a blob that is no capture, gz and zip (with and
// without a password), a fault proxy that answers 503 and cuts the
// transfer, and the SSRF guard.  Flow counts are compared with an upload of
// the same file; every log and API answer is grepped for the SAS signature.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { sigOf, startAzurite } from '../lib/azurite.mjs';
import { startFaultProxy } from '../lib/faultproxy.mjs';
import { pcap, ROOT, startServer } from '../lib/server.mjs';

let az, srv, c, ws, tmp;
const answers = []; // every API answer's text, for the sig= grep
const sigs = new Set();
const localFlows = new Map();

function recording(client) {
  const orig = client.req.bind(client);
  client.req = async (...args) => {
    const r = await orig(...args);
    answers.push(r.text);
    return r;
  };
  return client;
}

function sas(opts) {
  const s = az.serviceSas(opts);
  sigs.add(sigOf(s));
  return s;
}

async function importUrl(body, wsId = ws) {
  const r = await c.post(`/api/workspaces/${wsId}/imports`, body);
  assert.equal(r.status, 202, r.text);
  return r.json;
}

async function capture(id, wsId = ws) {
  const caps = (await c.get(`/api/workspaces/${wsId}/captures`)).json.captures;
  return caps.find((x) => x.id === id);
}

// Flows of a local upload of the same file, in a workspace of its own.
async function flowsOfUpload(file) {
  if (localFlows.has(file)) return localFlows.get(file);
  const w = (await c.post('/api/workspaces', { name: `local ${path.basename(file)}` })).json.workspace.id;
  const up = await c.upload(w, file);
  assert.equal(up.status, 202, up.text);
  const job = await c.waitJob(up.json.job.id);
  assert.equal(job.state, 'done', JSON.stringify(job));
  const n = (await capture(up.json.capture.id, w)).report.flows;
  localFlows.set(file, n);
  return n;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-urlimp-'));
  az = await startAzurite();
  srv = await startServer({
    env: {
      CAPATLAS_FETCH_ALLOW_HOSTS: '127.0.0.1,localhost',
      CAPATLAS_FETCH_CA_FILE: az.certFile,
      CAPATLAS_AZURE_LIST_MAX: '2', // several List Blobs pages: NextMarker is followed
      CAPATLAS_FETCH_CONNECT_TIMEOUT: '5',
    },
  });
  c = recording(srv.client());
  assert.equal((await c.login()).status, 200);
  ws = (await c.post('/api/workspaces', { name: 'from azure' })).json.workspace.id;
  await az.createContainer('captures');
  await az.putBlob('captures', 'smtp.pcap', { file: pcap('smtp.pcap') });
  await az.putBlob('captures', 'http_ipv6.pcap', { file: pcap('http_ipv6.pcap') });
  await az.putBlob('captures', 'notes.txt', { file: path.join(ROOT, 'README.md') });
  const nw = 'resourceGroups/rg1/providers/microsoft.compute/virtualMachines/web-vm1/2017/02/22/packetcapture_10_42_48_238.cap';
  await az.putBlob('captures', nw, { file: pcap('dns.pcap') });
});

after(async () => {
  // The grep: no SAS signature in any answer or log of this file's tests.
  if (srv) {
    const logs = [srv.log()];
    const logDir = path.join(srv.dataDir, 'log');
    if (fs.existsSync(logDir)) for (const f of fs.readdirSync(logDir)) logs.push(fs.readFileSync(path.join(logDir, f), 'utf8'));
    for (const sig of sigs) {
      for (const text of [...answers, ...logs]) {
        assert.ok(!text.includes(sig) && !text.includes(encodeURIComponent(sig)), 'a SAS signature leaked into a log or an API answer');
      }
    }
    assert.ok(sigs.size >= 5, 'signatures were collected');
    await srv.stop();
  }
  if (az) await az.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('one blob by SAS URL: streamed, parsed, same flows as an upload, source redacted', async () => {
  const url = az.blobUrl('captures', 'smtp.pcap', sas({ container: 'captures', blob: 'smtp.pcap' }));
  const r = await importUrl({ url });
  assert.equal(r.capture.name, 'smtp.pcap');
  assert.equal(r.capture.source, `https://127.0.0.1:${az.port}/devstoreaccount1/captures/smtp.pcap?…`);
  assert.equal(r.job.kind, 'url');
  const job = await c.waitJob(r.job.id);
  assert.equal(job.state, 'done', JSON.stringify(job));
  assert.equal(job.bytes_done, fs.statSync(pcap('smtp.pcap')).size);
  assert.equal(job.percent, 100);
  const cap = await capture(r.capture.id);
  assert.equal(cap.state, 'ready');
  assert.equal(cap.report.md5_verified, true, 'Content-MD5 checked');
  assert.equal(cap.report.flows, await flowsOfUpload(pcap('smtp.pcap')));
});

test('a container: listed with sizes over several pages, Network Watcher labels, then a selection imported', async () => {
  const csas = sas({ container: 'captures', perms: 'rl' });
  const curl = az.containerUrl('captures', csas);
  const l = await c.post(`/api/workspaces/${ws}/imports/list`, { url: curl });
  assert.equal(l.status, 202, l.text);
  const lj = await c.waitJob(l.json.job.id);
  assert.equal(lj.state, 'done', JSON.stringify(lj));
  const blobs = lj.result.blobs;
  assert.equal(blobs.length, 4);
  const smtp = blobs.find((b) => b.name === 'smtp.pcap');
  assert.equal(smtp.size, fs.statSync(pcap('smtp.pcap')).size);
  assert.match(smtp.last_modified, /GMT$/);
  const nw = blobs.find((b) => b.name.endsWith('.cap'));
  assert.equal(nw.vm, 'web-vm1');
  assert.equal(nw.capture_time, '2017-02-22T10:42:48.238Z');

  const r = await importUrl({ url: curl, blobs: ['http_ipv6.pcap', nw.name] });
  assert.equal(r.captures.length, 2);
  for (const j of r.jobs) assert.equal((await c.waitJob(j.id)).state, 'done');
  const caps = await Promise.all(r.captures.map((x) => capture(x.id)));
  const v6 = caps.find((x) => x.name === 'http_ipv6.pcap');
  assert.equal(v6.report.flows, await flowsOfUpload(pcap('http_ipv6.pcap')));
  const vm = caps.find((x) => x.labels);
  assert.deepEqual(vm.labels, { vm: 'web-vm1', capture_time: '2017-02-22T10:42:48.238Z' });
  assert.match(vm.name, /^web-vm1 packetcapture_/);
  assert.equal(vm.report.flows, await flowsOfUpload(pcap('dns.pcap')));
});

test('a container without a selection imports every blob; the one that is no capture fails clearly', async () => {
  const w = (await c.post('/api/workspaces', { name: 'whole container' })).json.workspace.id;
  const curl = az.containerUrl('captures', sas({ container: 'captures', perms: 'rl' }));
  const r = await importUrl({ url: curl }, w);
  assert.equal(r.job.kind, 'container');
  const cj = await c.waitJob(r.job.id);
  assert.equal(cj.state, 'done', JSON.stringify(cj));
  assert.equal(cj.result.jobs.length, 4);
  const states = [];
  for (const id of cj.result.jobs) states.push(await c.waitJob(id));
  assert.equal(states.filter((j) => j.state === 'done').length, 3);
  const bad = states.find((j) => j.state === 'failed');
  assert.match(bad.error, /not a capture/);
});

test('an expired SAS: a clear 403 message with the expiry, nothing stored', async () => {
  const w = (await c.post('/api/workspaces', { name: 'expired' })).json.workspace.id;
  const expiry = Date.now() - 3600e3;
  const url = az.blobUrl('captures', 'smtp.pcap', sas({ container: 'captures', blob: 'smtp.pcap', expiry, start: expiry - 7200e3 }));
  const r = await importUrl({ url }, w);
  const job = await c.waitJob(r.job.id);
  assert.equal(job.state, 'failed');
  const se = new Date(expiry).toISOString().replace(/\.\d{3}Z$/, 'Z');
  assert.match(job.error, /^the SAS link was refused by storage: expired or wrong permissions \(se=/);
  assert.ok(job.error.includes(`(se=${se})`), job.error);
  assert.equal((await capture(r.capture.id, w)).state, 'failed');
  assert.equal((await c.get(`/api/workspaces/${w}/flows?limit=1`)).json.total, 0);
});

test('a wrong signature is refused with the same words', async () => {
  const good = sas({ container: 'captures', blob: 'smtp.pcap' });
  const forged = good.replace(/sig=[^&]+/, `sig=${encodeURIComponent(Buffer.alloc(32, 7).toString('base64'))}`);
  sigs.add(sigOf(forged));
  const r = await importUrl({ url: az.blobUrl('captures', 'smtp.pcap', forged) });
  const job = await c.waitJob(r.job.id);
  assert.equal(job.state, 'failed');
  assert.match(job.error, /the SAS link was refused by storage: expired or wrong permissions/);
});

test('a missing blob is "no such blob"; a blob that is no capture says so', async () => {
  const r = await importUrl({ url: az.blobUrl('captures', 'nope.pcap', sas({ container: 'captures', blob: 'nope.pcap' })) });
  const job = await c.waitJob(r.job.id);
  assert.equal(job.state, 'failed');
  assert.equal(job.error, 'no such blob');
  const t = await importUrl({ url: az.blobUrl('captures', 'notes.txt', sas({ container: 'captures', blob: 'notes.txt' })) });
  const tj = await c.waitJob(t.job.id);
  assert.equal(tj.state, 'failed');
  assert.match(tj.error, /^not a capture: not a pcap or pcapng file/);
});

test('a .gz capture and .zip archives (with and without a password) become captures with the same flows', async () => {
  const gz = path.join(tmp, 'smtp.pcap.gz');
  fs.writeFileSync(gz, execFileSync('gzip', ['-c', pcap('smtp.pcap')]));
  const zip = path.join(tmp, 'two.zip');
  const zipPw = path.join(tmp, 'secret.zip');
  execFileSync('zip', ['-j', '-q', zip, pcap('smtp.pcap'), pcap('http_ipv6.pcap')]);
  execFileSync('zip', ['-j', '-q', '-P', 'hunter2', zipPw, pcap('dns.pcap')]);
  await az.putBlob('archives', 'x', Buffer.alloc(0)).catch(() => {});
  await az.createContainer('archives');
  for (const f of [gz, zip, zipPw]) await az.putBlob('archives', path.basename(f), { file: f });
  const w = (await c.post('/api/workspaces', { name: 'archives' })).json.workspace.id;

  const g = await importUrl({ url: az.blobUrl('archives', 'smtp.pcap.gz', sas({ container: 'archives', blob: 'smtp.pcap.gz' })) }, w);
  assert.equal((await c.waitJob(g.job.id)).state, 'done');
  assert.equal((await capture(g.capture.id, w)).report.flows, await flowsOfUpload(pcap('smtp.pcap')));

  const z = await importUrl({ url: az.blobUrl('archives', 'two.zip', sas({ container: 'archives', blob: 'two.zip' })) }, w);
  const zj = await c.waitJob(z.job.id);
  assert.equal(zj.state, 'done', JSON.stringify(zj));
  assert.equal(zj.result.captures.length, 2);
  for (const id of zj.result.jobs) assert.equal((await c.waitJob(id)).state, 'done');
  const members = await Promise.all(zj.result.captures.map((id) => capture(id, w)));
  assert.deepEqual(members.map((m) => m.name).sort(), ['http_ipv6.pcap', 'smtp.pcap']);
  for (const m of members) assert.equal(m.report.flows, await flowsOfUpload(pcap(m.name)));

  const zpUrl = az.blobUrl('archives', 'secret.zip', sas({ container: 'archives', blob: 'secret.zip' }));
  const nopw = await importUrl({ url: zpUrl }, w);
  const nj = await c.waitJob(nopw.job.id);
  assert.equal(nj.state, 'failed');
  assert.match(nj.error, /password-protected and the password is missing or wrong/);
  const pw = await importUrl({ url: zpUrl, password: 'hunter2' }, w);
  const pj = await c.waitJob(pw.job.id);
  assert.equal(pj.state, 'done', JSON.stringify(pj));
  assert.equal((await c.waitJob(pj.result.jobs[0])).state, 'done');
  assert.equal((await capture(pj.result.captures[0], w)).report.flows, await flowsOfUpload(pcap('dns.pcap')));
});

test('through a faulty proxy (503 + Retry-After, then a cut mid-transfer) the import resumes with Range', async () => {
  const file = pcap('1kxun.pcap');
  await az.putBlob('captures', 'big.pcap', { file });
  const px = await startFaultProxy({ upstreamPort: az.port, ca: az.ca, cert: az.certFile, key: az.keyFile, cutAfter: 1 << 20 });
  try {
    const s = sas({ container: 'captures', blob: 'big.pcap' });
    const url = px.url(`/devstoreaccount1/captures/big.pcap?${s}`);
    const t0 = Date.now();
    const r = await importUrl({ url });
    const job = await c.waitJob(r.job.id);
    assert.equal(job.state, 'done', JSON.stringify(job));
    assert.ok(Date.now() - t0 >= 900, 'Retry-After: 1 was honoured');
    const gets = px.requests.filter((q) => q.method === 'GET');
    assert.deepEqual(gets.map((q) => q.outcome), ['503', 'cut', '206']);
    assert.equal(gets[2].range, `bytes=${1 << 20}-`);
    const cap = await capture(r.capture.id);
    assert.equal(cap.size, fs.statSync(file).size);
    assert.equal(cap.report.md5_verified, true);
    assert.equal(cap.report.download.resumes, 1);
    assert.equal(cap.report.flows, await flowsOfUpload(file));
  } finally {
    await px.stop();
  }
});

test('progress can be followed and a running import cancelled', async () => {
  const w = (await c.post('/api/workspaces', { name: 'cancel' })).json.workspace.id;
  // A proxy that answers 503 with a long Retry-After keeps the job running.
  const px = await startFaultProxy({ upstreamPort: az.port, ca: az.ca, cert: az.certFile, key: az.keyFile, retryAfter: 60 });
  try {
    const r = await importUrl({ url: px.url(`/devstoreaccount1/captures/smtp.pcap?${sas({ container: 'captures', blob: 'smtp.pcap' })}`) }, w);
    for (let i = 0; i < 100 && (await c.get(`/api/jobs/${r.job.id}`)).json.job.state !== 'running'; i++) await new Promise((res) => setTimeout(res, 100));
    const x = await c.post(`/api/jobs/${r.job.id}/cancel`);
    assert.equal(x.status, 200, x.text);
    const job = await c.waitJob(r.job.id, 20000).catch(async () => (await c.get(`/api/jobs/${r.job.id}`)).json.job);
    assert.equal(job.state, 'canceled', JSON.stringify(job));
    assert.equal((await capture(r.capture.id, w)).state, 'failed');
  } finally {
    await px.stop();
  }
});

test('bad URLs are refused up front', async () => {
  for (const [url, re] of [
    ['ftp://example.com/x.pcap', /only https/],
    ['http://example.com/x.pcap', /only https/],
    ['https://user:pw@example.com/x.pcap', /user name or password/],
    ['not a url', /spaces|only https/],
  ]) {
    const r = await c.post(`/api/workspaces/${ws}/imports`, { url });
    assert.equal(r.status, 400, url);
    assert.equal(r.json.field, 'url');
    assert.match(r.json.error, re);
  }
});

test('without an allow-list entry, internal addresses are refused, also behind a redirect', async () => {
  // A second server that allow-lists only "localhost" (the redirector below).
  const s2 = await startServer({ env: { CAPATLAS_FETCH_ALLOW_HOSTS: 'localhost', CAPATLAS_FETCH_CA_FILE: az.certFile, CAPATLAS_FETCH_RETRIES: '0' } });
  const redirector = https.createServer({ cert: fs.readFileSync(az.certFile), key: fs.readFileSync(az.keyFile) }, (req, res) => {
    const to = req.url.startsWith('/meta') ? 'https://169.254.169.254/latest/meta-data/' : `https://127.0.0.1:${az.port}/devstoreaccount1/captures/smtp.pcap`;
    res.writeHead(302, { Location: to });
    res.end();
  });
  await new Promise((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  const rport = redirector.address().port;
  try {
    const c2 = s2.client();
    await c2.login();
    const w = (await c2.post('/api/workspaces', { name: 'ssrf' })).json.workspace.id;
    const cases = [
      [`https://localhost:${rport}/meta`, /refused to connect to 169\.254\.169\.254 \(link-local address\)/],
      [`https://localhost:${rport}/loop`, /refused to connect to 127\.0\.0\.1 \(loopback address\)/],
      [`https://127.0.0.1:${az.port}/devstoreaccount1/captures/smtp.pcap`, /refused to connect to 127\.0\.0\.1 \(loopback address\)/],
    ];
    for (const [url, re] of cases) {
      const r = await c2.post(`/api/workspaces/${w}/imports`, { url });
      assert.equal(r.status, 202, r.text);
      const job = await c2.waitJob(r.json.job.id);
      assert.equal(job.state, 'failed', url);
      assert.match(job.error, re, url);
    }
  } finally {
    redirector.close();
    await s2.stop();
  }
});
