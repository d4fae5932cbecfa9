// See import-bench.sh.  The big capture is made from a real one of the
// corpus, its records repeated with shifted timestamps.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { startAzurite } from '../lib/azurite.mjs';
import { pcap, startServer } from '../lib/server.mjs';

const MB = Number(process.env.CAPATLAS_BENCH_MB || 1024);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function makeBig(file, target) {
  const src = fs.readFileSync(pcap('1kxun.pcap'));
  assert.equal(src.readUInt32LE(0), 0xa1b2c3d4, 'little-endian microsecond pcap');
  const recs = [];
  let first = null;
  let last = 0;
  for (let off = 24; off + 16 <= src.length; ) {
    const incl = src.readUInt32LE(off + 8);
    const sec = src.readUInt32LE(off);
    if (first === null) first = sec;
    last = sec;
    recs.push(src.subarray(off, off + 16 + incl));
    off += 16 + incl;
  }
  const span = last - first + 1;
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, src.subarray(0, 24));
  let size = 24;
  for (let round = 0; size < target; round++) {
    const parts = [];
    for (const r of recs) {
      const c = Buffer.from(r);
      c.writeUInt32LE((r.readUInt32LE(0) + round * Math.min(span, 86400)) % 2 ** 32, 0);
      parts.push(c);
    }
    const b = Buffer.concat(parts);
    fs.writeSync(fd, b);
    size += b.length;
  }
  fs.closeSync(fd);
  return size;
}

async function timeJob(c, start, id) {
  for (;;) {
    const j = (await c.get(`/api/jobs/${id}`)).json.job;
    if (j.state === 'done' || j.state === 'failed') return { ms: Date.now() - start, job: j };
    await sleep(50);
  }
}

test(`a ${MB} MB blob from Azurite imports in at most 1.3x the local-disk time`, { timeout: 3600e3 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-bench-'));
  const big = path.join(dir, 'big.pcap');
  // CAPATLAS_BENCH_FILE: a capture to use instead (e.g. gencap's realistic
  // mix, where parsing rather than Azurite's serving sets the pace).
  let size;
  if (process.env.CAPATLAS_BENCH_FILE) {
    fs.copyFileSync(process.env.CAPATLAS_BENCH_FILE, big);
    size = fs.statSync(big).size;
  } else {
    size = makeBig(big, MB * 1024 * 1024);
  }
  const az = await startAzurite();
  const srv = await startServer({ env: { CAPATLAS_FETCH_ALLOW_HOSTS: '127.0.0.1', CAPATLAS_FETCH_CA_FILE: az.certFile } });
  try {
    await az.createContainer('bench');
    await az.putBlob('bench', 'big.pcap', { file: big });
    const c = srv.client();
    await c.login();
    const ws = (await c.post('/api/workspaces', { name: 'bench' })).json.workspace.id;

    const up = await c.upload(ws, big);
    assert.equal(up.status, 202, up.text);
    const local = await timeJob(c, Date.now(), up.json.job.id);
    assert.equal(local.job.state, 'done');

    const url = az.blobUrl('bench', 'big.pcap', az.serviceSas({ container: 'bench', blob: 'big.pcap' }));
    const t0 = Date.now();
    const r = await c.post(`/api/workspaces/${ws}/imports`, { url });
    assert.equal(r.status, 202, r.text);
    const remote = await timeJob(c, t0, r.json.job.id);
    assert.equal(remote.job.state, 'done', JSON.stringify(remote.job));

    // Local again, after the URL import: the first import into a fresh
    // workspace also pays for growing its LMDB map, so compare with the
    // faster of the two local runs rather than favour the URL import.
    const up2 = await c.upload(ws, big);
    assert.equal(up2.status, 202, up2.text);
    const local2 = await timeJob(c, Date.now(), up2.json.job.id);
    assert.equal(local2.job.state, 'done');
    console.log(`# local runs: ${(local.ms / 1000).toFixed(1)} s, ${(local2.ms / 1000).toFixed(1)} s`);
    if (local2.ms < local.ms) local.ms = local2.ms;

    const ratio = remote.ms / local.ms;
    console.log(`# size ${(size / 1048576).toFixed(0)} MiB: local ${(local.ms / 1000).toFixed(1)} s, ` +
      `Azurite ${(remote.ms / 1000).toFixed(1)} s, ratio ${ratio.toFixed(2)} ` +
      `(${(size / 1048576 / (remote.ms / 1000)).toFixed(0)} MiB/s)`);
    assert.ok(ratio <= 1.3, `URL import ${ratio.toFixed(2)}x the local import`);
  } finally {
    await srv.stop();
    await az.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
