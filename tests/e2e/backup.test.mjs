// Backup and restore: `capatlasd backup` of a data folder while an import
// runs, `capatlasd restore` into a new data folder, a portal started on it:
// an interrupted import is not visible there (and is re-queued), and once
// it ran the restored portal answers the same queries as the original
// (captures, flow totals, every flows page).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { pcap, startServer } from '../lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-backup-'));
fs.chmodSync(tmp, 0o755); // the restored portal's user must reach its data folder
let srv, restored, c, wsId, big, bigCapture, bigJob;
const small = ['http_ipv6.pcap', 'smtp.pcap'];

// A classic little-endian pcap repeated `times` times, each copy an hour
// later, so that the import lasts long enough to back up in the middle of it.
function bigPcap(src, times, out) {
  const b = fs.readFileSync(src);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4, 'a little-endian microsecond pcap');
  const parts = [b.subarray(0, 24)];
  for (let k = 0; k < times; k++) {
    const body = Buffer.from(b.subarray(24));
    for (let off = 0; off + 16 <= body.length; ) {
      body.writeUInt32LE(body.readUInt32LE(off) + k * 3600, off);
      off += 16 + body.readUInt32LE(off + 8);
    }
    parts.push(body);
  }
  fs.writeFileSync(out, Buffer.concat(parts));
}

// Everything a client sees of a workspace: captures, totals, all flow pages.
async function answers(client, ws) {
  const caps = (await client.get(`/api/workspaces/${ws}/captures`)).json.captures.map((x) => ({
    id: x.id,
    name: x.name,
    size: x.size,
    state: x.state,
    report: x.report,
  }));
  const pages = [];
  let after = 0;
  for (;;) {
    const r = await client.get(`/api/workspaces/${ws}/flows?limit=1000&after=${after}`);
    assert.equal(r.status, 200, r.text);
    pages.push({ total: r.json.total, ids: r.json.flows.map((f) => f.id), flows: r.json.flows });
    if (!r.json.next) break;
    after = r.json.next;
  }
  const page7 = (await client.get(`/api/workspaces/${ws}/flows?limit=7&after=0`)).json;
  return { caps, total: pages[0].total, pages, page7 };
}

before(async () => {
  big = path.join(tmp, 'big.pcap');
  bigPcap(pcap('1kxun.pcap'), 16, big);
  srv = await startServer();
  c = srv.client();
  assert.equal((await c.login()).status, 200);
  wsId = (await c.post('/api/workspaces', { name: 'backed-up' })).json.workspace.id;
  for (const name of small) {
    const up = await c.upload(wsId, pcap(name));
    assert.equal((await c.waitJob(up.json.job.id)).state, 'done');
  }
});

after(async () => {
  if (restored) await restored.stop();
  if (srv) await srv.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('backup while an import runs, restore into a new folder, same answers', async (t) => {
  const bin = path.join(srv.dataDir, 'bin/capatlasd');
  const before = await answers(c, wsId);

  // Start the long import and back up as soon as it is running.
  const up = await c.upload(wsId, big, 'big.pcap');
  assert.equal(up.status, 202, up.text);
  bigCapture = up.json.capture.id;
  bigJob = up.json.job.id;
  for (let i = 0; ; i++) {
    const j = (await c.get(`/api/jobs/${bigJob}`)).json.job;
    if (j.state === 'running') break;
    assert.ok(i < 400 && j.state === 'queued', `job ${JSON.stringify(j)}`);
    await sleep(25);
  }
  const out = path.join(tmp, 'backup');
  const b = spawnSync(bin, ['backup', '--data', srv.dataDir, '--out', out], { encoding: 'utf8' });
  const stateAfter = (await c.get(`/api/jobs/${bigJob}`)).json.job.state;
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /backup of .* \d+ LMDB environments, \d+ files/);
  const man = JSON.parse(fs.readFileSync(path.join(out, 'capatlas-backup.json'), 'utf8'));
  assert.ok(man.environments.includes('portal'));
  assert.ok(man.environments.includes(`workspaces/${wsId}/db`));
  assert.ok(!fs.existsSync(path.join(out, 'run')) && !fs.existsSync(path.join(out, 'portal/lock.mdb')));
  // A second backup into the same folder is refused.
  assert.notEqual(spawnSync(bin, ['backup', '--data', srv.dataDir, '--out', out]).status, 0);

  // The original finishes its import.
  assert.equal((await c.waitJob(bigJob, 240000)).state, 'done');
  const original = await answers(c, wsId);
  assert.ok(original.total > before.total);

  // Restore into a new folder (and refuse a folder in use).
  const data2 = path.join(tmp, 'restored');
  assert.notEqual(spawnSync(bin, ['restore', '--from', out, '--data', srv.dataDir]).status, 0);
  const r = spawnSync(bin, ['restore', '--from', out, '--data', data2], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);

  // First without import workers: the capture that was being imported is
  // not visible, the others are as before.
  restored = await startServer({ dataDir: data2, env: { CAPATLAS_IMPORT_WORKERS: '0' } });
  const rc = restored.client();
  assert.equal((await rc.login(srv.admin.username, srv.admin.password)).status, 200, 'the original admin');
  const snap = await answers(rc, wsId);
  const bigSnap = snap.caps.find((x) => x.id === bigCapture);
  t.diagnostic(`big capture in the backup: ${bigSnap.state}; job right after the backup: ${stateAfter}`);
  if (bigSnap.state !== 'ready') {
    assert.match(r.stdout, /1 interrupted import\(s\) re-queued/);
    assert.equal(snap.total, before.total, 'a capture being imported is not half visible');
    assert.deepEqual(snap.pages.map((p) => p.ids), before.pages.map((p) => p.ids));
    assert.equal((await rc.get(`/api/jobs/${bigJob}`)).json.job.state, 'queued');
  } else {
    // The import committed before the workspace was copied (stateAfter tells).
    t.diagnostic(`import finished during the backup (job was ${stateAfter})`);
    assert.equal(snap.total, original.total);
  }
  await restored.stop();

  // Then with import workers: the re-queued import runs; the answers match.
  restored = await startServer({ dataDir: data2 });
  const rc2 = restored.client();
  assert.equal((await rc2.login(srv.admin.username, srv.admin.password)).status, 200);
  assert.equal((await rc2.waitJob(bigJob, 240000)).state, 'done');
  const again = await answers(rc2, wsId);
  assert.deepEqual(again.caps, original.caps);
  assert.equal(again.total, original.total);
  assert.deepEqual(again.page7, original.page7);
  assert.equal(again.pages.length, original.pages.length);
  for (let i = 0; i < original.pages.length; i++) assert.deepEqual(again.pages[i], original.pages[i], `flows page ${i}`);
  // The capture files came along.
  const capDir = path.join(data2, `workspaces/${wsId}/captures`);
  assert.equal(fs.readdirSync(capDir).length, original.caps.length);
  assert.doesNotMatch(restored.log(), /AddressSanitizer|runtime error|died/);
});
