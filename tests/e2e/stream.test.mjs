// Streaming ingest, the authenticated PCAP-over-IP: a capture piped through
// `curl -T -` (chunked PUT) in pieces with pauses is imported while it
// flows -- the job runs before the stream ends -- and gives the same flows
// as an upload of the same file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { pcap, startServer } from '../lib/server.mjs';

let srv, c;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  srv = await startServer();
  c = srv.client();
  assert.equal((await c.login()).status, 200);
});
after(async () => {
  if (srv) await srv.stop();
});

// curl -T - with the session cookie and CSRF header (API tokens work the same
// way with -H "Authorization: Bearer ..."); resolves curl's output and status.
function curlPut(urlPath, extra = []) {
  const certFile = path.join(srv.dataDir, 'tls/cert.pem');
  const child = spawn('curl', [
    '-sS', '--cacert', certFile, '--resolve', `localhost:${srv.port}:127.0.0.1`,
    '-H', `Cookie: ${c.cookie}`, '-H', `X-CSRF-Token: ${c.csrf}`, '-H', 'Content-Type: application/octet-stream',
    '-T', '-', '-w', '\n%{http_code}', ...extra, `https://localhost:${srv.port}${urlPath}`,
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve) => child.on('exit', (code) => {
    const lines = out.trim().split('\n');
    const status = Number(lines.pop());
    let json = null;
    try {
      json = JSON.parse(lines.join('\n'));
    } catch {}
    resolve({ code, status, json, out, err });
  }));
  return { stdin: child.stdin, done };
}

async function jobsOf(ws) {
  const caps = (await c.get(`/api/workspaces/${ws}/captures`)).json.captures;
  return caps;
}

for (const proto of [['--http1.1'], ['--http2']]) {
  test(`a capture piped through curl -T - (${proto[0]}) in chunks with pauses: imported while it flows, same flows as an upload`, async () => {
    const file = pcap('1kxun.pcap');
    const data = fs.readFileSync(file);
    const ws = (await c.post('/api/workspaces', { name: `stream ${proto[0]}` })).json.workspace.id;
    const put = curlPut(`/api/workspaces/${ws}/captures?name=live.pcap`, proto);
    const chunk = 256 * 1024;
    let sawRunning = false;
    for (let off = 0; off < data.length; off += chunk) {
      put.stdin.write(data.subarray(off, Math.min(off + chunk, data.length)));
      await sleep(150);
      if (off >= chunk * 4 && !sawRunning) {
        // Mid-stream: the capture and its job exist and the job is reading.
        const caps = await jobsOf(ws);
        if (caps.length === 1 && caps[0].job) {
          const j = (await c.get(`/api/jobs/${caps[0].job}`)).json.job;
          if (j.state === 'running' && j.bytes_done > 0) sawRunning = true;
        }
      }
    }
    put.stdin.end();
    const res = await put.done;
    assert.equal(res.code, 0, res.err);
    assert.equal(res.status, 202, res.out);
    assert.ok(sawRunning, 'the import ran while the stream was still open');
    const job = await c.waitJob(res.json.job.id);
    assert.equal(job.state, 'done', JSON.stringify(job));
    assert.equal(job.kind, 'stream');
    assert.equal(job.bytes_done, data.length);
    const cap = (await jobsOf(ws)).find((x) => x.id === res.json.capture.id);
    assert.equal(cap.size, data.length);
    assert.equal(cap.source, 'stream: live.pcap');

    const w2 = (await c.post('/api/workspaces', { name: 'upload twin' })).json.workspace.id;
    const up = await c.upload(w2, file);
    assert.equal((await c.waitJob(up.json.job.id)).state, 'done');
    const ref = (await jobsOf(w2)).find((x) => x.id === up.json.capture.id);
    assert.equal(cap.report.flows, ref.report.flows);
    assert.equal(cap.report.packets, ref.report.packets);
  });
}

test('a stream without the CSRF token is refused before any byte is stored', async () => {
  const ws = (await c.post('/api/workspaces', { name: 'stream no csrf' })).json.workspace.id;
  const saved = c.csrf;
  c.csrf = 'x'.repeat(64);
  const put = curlPut(`/api/workspaces/${ws}/captures?name=x.pcap`);
  put.stdin.end(fs.readFileSync(pcap('smtp.pcap')));
  const res = await put.done;
  c.csrf = saved;
  assert.equal(res.status, 403, res.out);
  assert.equal((await jobsOf(ws)).length, 0);
});
