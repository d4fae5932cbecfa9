// See import-bench.sh.  The big capture is made from a real one of the
// corpus, its records repeated with shifted timestamps.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { startAzurite } from '../lib/azurite.mjs';
import { repeatCapture } from '../lib/bigcap.mjs';
import { pcap, startServer } from '../lib/server.mjs';

const MB = Number(process.env.CAPATLAS_BENCH_MB || 1024);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function makeBig(file, target) {
  return repeatCapture(fs.readFileSync(pcap('1kxun.pcap')), file, target, 86400);
}

async function timeJob(c, start, id) {
  for (;;) {
    const j = (await c.get(`/api/jobs/${id}`)).json.job;
    if (j.state === 'done' || j.state === 'failed') return { ms: Date.now() - start, job: j };
    await sleep(50);
  }
}

// Per process whose command line contains `match` (the server's data folder, or Azurite's):
// its CPU seconds (user + system, all threads, also those gone) and its main thread's running
// time and the time it was runnable but waited for a CPU (schedstat; 0 where unreadable).  The
// import worker is the process that used the most CPU during an import; its main thread parses,
// any other CPU of it is the download's (TLS, MD5, writing the file).
function procsOf(match) {
  const m = new Map();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(match)) continue;
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      let run = 0;
      let wait = 0;
      try {
        [run, wait] = fs.readFileSync(`/proc/${p}/task/${p}/schedstat`, 'utf8').split(' ').map(Number);
      } catch {
        /* no schedstat */
      }
      m.set(p, { cpu: (Number(f[11]) + Number(f[12])) / 100, run: run / 1e9, wait: wait / 1e9 }); /* USER_HZ */
    } catch {
      /* gone */
    }
  }
  return m;
}

const cpuOf = (match) => [...procsOf(match).values()].reduce((t, x) => t + x.cpu, 0);

function workerSplit(before, after) {
  let best = null;
  for (const [p, a] of after) {
    const b = before.get(p);
    if (b && (best === null || a.cpu - b.cpu > best.cpu)) {
      best = { cpu: a.cpu - b.cpu, parser: a.run - b.run, waited: a.wait - b.wait };
    }
  }
  return best;
}

const ROUNDS = Number(process.env.CAPATLAS_BENCH_ROUNDS || 2);

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
  // Azurite keeps the blob in memory unless CAPATLAS_BENCH_AZURITE=disk:
  // its file store costs it a thread-pool hop per 64 KiB read, CPU a real
  // storage account does not take from the importing machine.
  const memory = process.env.CAPATLAS_BENCH_AZURITE !== 'disk';
  const az = await startAzurite({ memory });
  let srv = null;
  try {
    srv = await startServer({ env: { CAPATLAS_FETCH_ALLOW_HOSTS: '127.0.0.1', CAPATLAS_FETCH_CA_FILE: az.certFile } });
    await az.createContainer('bench');
    await az.putBlob('bench', 'big.pcap', { file: big });
    const c = srv.client();
    await c.login();
    const ws = (await c.post('/api/workspaces', { name: 'bench' })).json.workspace.id;

    // Each import starts with no dirty page of an earlier step left: the
    // kernel writes a file back 30 s after it was written, so the 1 GB an
    // upload (or a download) leaves would otherwise reach the disk during
    // the next import, whose LMDB syncs then wait behind it (up to ~1.5 s
    // more for whichever import follows the local one's upload: the URL
    // import).  The file of a local import is on disk; the URL import's
    // writing of its own 1 GB stays in its time.
    const measure = async (what, startJob) => {
      execFileSync('sync');
      const load = os.loadavg()[0];
      const cs = cpuOf(srv.dataDir);
      const ca = cpuOf(az.dir);
      const ts = procsOf(srv.dataDir);
      const { t0, id } = await startJob();
      const r = await timeJob(c, t0, id);
      assert.equal(r.job.state, 'done', JSON.stringify(r.job));
      const w = workerSplit(ts, procsOf(srv.dataDir));
      // a URL import's worker logs how long its parser waited for the download's bytes
      const dl = srv.log().match(new RegExp(`job ${id}: \\d+ bytes downloaded; the engine waited ([\\d.]+) s`));
      r.line = `${what} ${(r.ms / 1000).toFixed(1)} s (load ${load.toFixed(2)}; CPU s: capatlas ` +
        `${(cpuOf(srv.dataDir) - cs).toFixed(1)}, Azurite ${(cpuOf(az.dir) - ca).toFixed(1)}` +
        (w ? `; import worker: parser ${w.parser.toFixed(1)} s + ${w.waited.toFixed(1)} s waiting for a CPU, ` +
          `download ${Math.max(0, w.cpu - w.parser).toFixed(1)} s` : '') +
        (dl ? `; the parser waited ${dl[1]} s for the download` : '') + ')';
      console.log(`# ${r.line}`);
      return r;
    };
    const local = async () => {
      const up = await c.upload(ws, big);
      assert.equal(up.status, 202, up.text);
      return { t0: Date.now(), id: up.json.job.id };
    };
    const remote = async () => {
      const url = az.blobUrl('bench', 'big.pcap', az.serviceSas({ container: 'bench', blob: 'big.pcap' }));
      const t0 = Date.now();
      const r = await c.post(`/api/workspaces/${ws}/imports`, { url });
      assert.equal(r.status, 202, r.text);
      return { t0, id: r.json.job.id };
    };

    // The first import into a fresh workspace also pays for growing its
    // LMDB map: a warm-up, not counted.  Then local and URL imports take
    // turns, and the fastest of each is compared, so that a burst of load
    // from elsewhere on the machine favours neither.
    await measure('warm-up local import', local);
    let bestLocal = Infinity;
    let bestRemote = Infinity;
    const paired = [];
    for (let i = 0; i < ROUNDS; i++) {
      const l = await measure(`local import ${i + 1}`, local);
      const r = await measure(`URL import ${i + 1}`, remote);
      bestLocal = Math.min(bestLocal, l.ms);
      bestRemote = Math.min(bestRemote, r.ms);
      paired.push((r.ms / l.ms).toFixed(2));
    }
    // each URL import over the local one just before it (both under the same load, roughly)
    console.log(`# paired ratios: ${paired.join(', ')}`);
    const ratio = bestRemote / bestLocal;
    console.log(`# size ${(size / 1048576).toFixed(0)} MiB, Azurite ${memory ? 'in memory' : 'on disk'}: ` +
      `local ${(bestLocal / 1000).toFixed(1)} s, Azurite ${(bestRemote / 1000).toFixed(1)} s, ` +
      `ratio ${ratio.toFixed(2)} (${(size / 1048576 / (bestRemote / 1000)).toFixed(0)} MiB/s; ` +
      `load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
    assert.ok(ratio <= 1.3, `URL import ${ratio.toFixed(2)}x the local import`);
  } finally {
    if (srv) await srv.stop(); /* Azurite is stopped also when the server did not start */
    await az.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
