// Readers during a large import (issue 4), run by `make bench` (tests/bench/query-concurrency.sh).
//
// Builds a 1M-flow workspace (build/tests/mkflows), then runs wrk (32 connections, 2 threads)
// against its summary and flows (sorted by bytes) endpoints through nginx + HTTPS + FastCGI:
// first idle for CAPATLAS_CONC_SECONDS (default 60), then for as long again while ~1 GB captures
// (build/tests/gencap, CAPATLAS_CONC_MB) are imported into the same workspace (one import is
// timed first; then enough copies are uploaded that imports run through the whole busy run).  Prints requests/s,
// p50/p99 of both runs and the errors; fails when there is any error (socket error, timeout,
// non-2xx answer) or the busy p99 exceeds 3x the idle p99.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, startServer } from '../lib/server.mjs';

const SECONDS = Number(process.env.CAPATLAS_CONC_SECONDS || 60);
const MB = Number(process.env.CAPATLAS_CONC_MB || 1024);
const FLOWS = Number(process.env.CAPATLAS_CONC_FLOWS || 1_000_000);
const MKFLOWS = path.join(ROOT, 'build/tests/mkflows');
const GENCAP = path.join(ROOT, 'build/tests/gencap');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const asRoot = process.getuid && process.getuid() === 0;
function asUser(user, cmd, args) {
  if (!asRoot) return execFileSync(cmd, args, { encoding: 'utf8' });
  const gid = execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim();
  return execFileSync('setpriv', [`--reuid=${user}`, `--regid=${gid}`, '--init-groups', '--', cmd, ...args], { encoding: 'utf8' });
}

// wrk with a Lua script alternating the paths; the script prints the latency percentiles (µs)
// and the error counts as one JSON line.
function wrk(url, cookie, paths, seconds, dir) {
  const lua = path.join(dir, 'conc.lua');
  fs.writeFileSync(
    lua,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(', ')}}
local i = 0
wrk.headers["Cookie"] = ${JSON.stringify(cookie)}
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%.3f,"p50":%d,"p99":%d,"max":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
`,
  );
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t2', '-c32', `-d${seconds}s`, '--timeout', '10s', '-s', lua, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`wrk exited ${code}: ${out}`));
      else resolve(JSON.parse(line));
    });
  });
}

function show(label, r) {
  const errors = r.connect + r.read + r.write + r.timeout + r.status;
  console.log(
    `${label.padEnd(28)} ${(r.requests / r.seconds).toFixed(0).padStart(6)} req/s  p50 ${(r.p50 / 1000).toFixed(1).padStart(7)} ms  p99 ${(r.p99 / 1000).toFixed(1).padStart(7)} ms  max ${(r.max / 1000).toFixed(0).padStart(6)} ms  errors ${errors} (connect ${r.connect}, read ${r.read}, write ${r.write}, timeout ${r.timeout}, non-2xx ${r.status})`,
  );
  return errors;
}

async function main() {
  if (!fs.existsSync(GENCAP)) {
    console.log('# query-concurrency: no build/tests/gencap (the capture generator); skipped');
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-conc-'));
  fs.chmodSync(tmp, 0o777);
  const web = path.join(tmp, 'web');
  fs.mkdirSync(web);
  fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>capatlas</title>\n');
  const srv = await startServer({ dataDir: path.join(tmp, 'data'), env: { CAPATLAS_WEBROOT: web } });
  let failed = false;
  try {
    const api = srv.client();
    assert.equal((await api.login()).status, 200);
    const info = JSON.parse(asUser('capatlas', MKFLOWS, ['--data', srv.dataDir, '--owner', 'admin', '--flows', String(FLOWS)]).trim().split('\n').pop());
    const ws = info.workspace;
    const paths = [`/api/workspaces/${ws}/summary`, `/api/workspaces/${ws}/flows?sort=bytes&order=desc&limit=100`];
    for (const p of paths) assert.equal((await api.get(p)).status, 200);
    let t = Date.now();
    const cap = path.join(tmp, 'big.pcap');
    execFileSync(GENCAP, ['-m', String(MB), '-o', cap]);
    console.log(`# ${FLOWS} flows in workspace ${ws}; ${MB} MB capture generated in ${((Date.now() - t) / 1000).toFixed(0)} s`);

    const idle = await wrk(srv.url, api.cookie, paths, SECONDS, tmp);
    const e1 = show('idle', idle);

    // One import to time it; then enough copies queued back to back (one import worker takes
    // them in turn) that imports run for the whole busy run.
    t = Date.now();
    const first = await api.upload(ws, cap);
    assert.equal(first.status, 202, first.text);
    const j1 = await api.waitJob(first.json.job.id, 3_600_000);
    assert.equal(j1.state, 'done', j1.error);
    const tImport = Math.max(1, j1.finished - j1.started);
    const copies = Math.min(8, Math.max(1, Math.ceil((SECONDS + 30) / tImport)));
    console.log(`# one ${MB} MB import: upload + import ${((Date.now() - t) / 1000).toFixed(0)} s, import ${tImport} s; uploading ${copies} more`);
    // The copies are uploaded first (imports start as each arrives), so that the busy run
    // measures readers against imports, not against nginx writing upload bodies to disk.
    const jobs = [];
    for (let i = 0; i < copies; i++) {
      const up = await api.upload(ws, cap, `big-${i + 2}.pcap`);
      assert.equal(up.status, 202, up.text);
      jobs.push(up.json.job.id);
    }
    const running = async () => {
      for (const id of jobs) if ((await api.get(`/api/jobs/${id}`)).json.job.state === 'running') return true;
      return false;
    };
    assert.ok(await running(), 'no import running after the uploads');
    const busy = await wrk(srv.url, api.cookie, paths, SECONDS, tmp);
    const states = [];
    for (const id of jobs) states.push((await api.get(`/api/jobs/${id}`)).json.job.state);
    const e2 = show('during imports', busy);
    console.log(`# job states at the end of the busy run: ${states.join(' ')}${states.includes('running') ? '' : ' (no import was running at the end)'}`);
    const ratio = busy.p99 / idle.p99;
    console.log(`# busy p99 / idle p99 = ${ratio.toFixed(2)} (target <= 3), errors ${e1 + e2} (target 0)`);
    let fin = { state: 'done' };
    for (const id of jobs) {
      const j = await api.waitJob(id, 3_600_000);
      if (j.state !== 'done') fin = j;
    }
    const s = (await api.get(`/api/workspaces/${ws}/summary`)).json;
    console.log(`# every import ${fin.state === 'done' ? 'done' : `not done: ${fin.state} ${fin.error}`}; workspace now ${s.flows} flows in ${s.captures} captures`);
    if (e1 + e2 > 0 || ratio > 3 || fin.state !== 'done') failed = true;
  } catch (e) {
    console.error(`query-concurrency: ${e.stack || e}`);
    failed = true;
  } finally {
    await srv.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failed) process.exit(1);
}

await main();
