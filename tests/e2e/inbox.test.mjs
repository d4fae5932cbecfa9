// The inbox folder: files dropped into a watched folder are imported into
// the configured workspace exactly once -- copied in whole, written slowly
// in pieces, or written under a dot-name and renamed at the end.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { pcap, startServer } from '../lib/server.mjs';

let srv, c, inbox, ws;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  inbox = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-inbox-'));
  fs.chmodSync(inbox, 0o777); // the server may run as its own unprivileged user
  // A fresh data folder: the first workspace created gets id 1.
  srv = await startServer({ env: { CAPATLAS_INBOX: `1:${inbox}`, CAPATLAS_INBOX_SETTLE_MS: '500' } });
  c = srv.client();
  assert.equal((await c.login()).status, 200);
  ws = (await c.post('/api/workspaces', { name: 'inbox' })).json.workspace.id;
  assert.equal(ws, 1, 'the inbox is configured for workspace 1');
});
after(async () => {
  if (srv) await srv.stop();
  if (inbox) fs.rmSync(inbox, { recursive: true, force: true });
});

async function captures() {
  return (await c.get(`/api/workspaces/${ws}/captures`)).json.captures;
}

async function waitFor(fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await sleep(200);
  }
}

test('files dropped into the inbox (whole, slowly written, renamed) are each imported once', async () => {
  fs.copyFileSync(pcap('smtp.pcap'), path.join(inbox, 'smtp.pcap'));
  fs.copyFileSync(pcap('dns.pcap'), path.join(inbox, 'dns.pcap'));

  // Written slowly: pieces with pauses longer than the settle time.
  const slow = fs.readFileSync(pcap('http_ipv6.pcap'));
  const fd = fs.openSync(path.join(inbox, 'slow.pcap'), 'w');
  const piece = Math.ceil(slow.length / 5);
  for (let off = 0; off < slow.length; off += piece) {
    fs.writeSync(fd, slow, off, Math.min(piece, slow.length - off));
    await sleep(900);
  }
  fs.closeSync(fd);

  // Written under a dot-name (ignored), then renamed into place.
  const tmpName = path.join(inbox, '.upload.tmp');
  fs.copyFileSync(pcap('1kxun.pcap'), tmpName);
  await sleep(1200);
  assert.ok(fs.existsSync(tmpName), 'a dot-file is left alone');
  fs.renameSync(tmpName, path.join(inbox, 'renamed.pcap'));

  const caps = await waitFor(async () => {
    const l = await captures();
    return l.length >= 4 && l.every((x) => x.state === 'ready' || x.state === 'failed') ? l : null;
  });
  assert.deepEqual(caps.map((x) => x.name).sort(), ['dns.pcap', 'renamed.pcap', 'slow.pcap', 'smtp.pcap']);
  for (const cap of caps) {
    assert.equal(cap.state, 'ready', JSON.stringify(cap));
    assert.equal(cap.source, `inbox: ${cap.name}`);
  }
  assert.deepEqual(fs.readdirSync(inbox), [], 'the inbox is emptied');

  // The slowly written file was taken whole: same flows as an upload.
  const w2 = (await c.post('/api/workspaces', { name: 'twin' })).json.workspace.id;
  const up = await c.upload(w2, pcap('http_ipv6.pcap'));
  await c.waitJob(up.json.job.id);
  const ref = (await c.get(`/api/workspaces/${w2}/captures`)).json.captures[0];
  const s = caps.find((x) => x.name === 'slow.pcap');
  assert.equal(s.size, slow.length);
  assert.equal(s.report.flows, ref.report.flows);
  assert.equal(s.report.packets, ref.report.packets);

  // Nothing is taken twice, also after the periodic scan.
  await sleep(4000);
  assert.equal((await captures()).length, 4);
});
