// A testssl-style check of what nginx offers on the HTTPS port, with
// openssl s_client: TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted, no weak
// ciphers; and the security headers on the SPA and on API answers, errors
// included.  The client runs at SECLEVEL=0 so that a refusal proves the
// SERVER refused (Debian's OpenSSL would refuse TLS 1.0 on its own).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startServer } from '../lib/server.mjs';

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  if (srv) await srv.stop();
});

function handshake(args, port = srv.port) {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], {
    input: 'Q\n',
    encoding: 'utf8',
    timeout: 15000,
  });
  const out = r.stdout + r.stderr;
  const m = /Protocol\s*:\s*(\S+)/.exec(out) || /New, (TLSv[\d.]+)/.exec(out);
  const cipher = /Cipher\s*(?:is|:)\s*(\S+)/.exec(out);
  const ok = r.status === 0 && !!cipher && cipher[1] !== '(NONE)' && cipher[1] !== '0000';
  return { ok, protocol: m && m[1], cipher: cipher && cipher[1], out };
}

test('control: this openssl client can still speak TLS 1.0 and 1.1 (so a refusal is the server\'s)', async () => {
  const { freePort } = await import('../lib/server.mjs');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-tls-'));
  spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`]);
  const server = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', `${dir}/c.pem`, '-key', `${dir}/k.pem`,
    '-cipher', 'DEFAULT:@SECLEVEL=0', '-www'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 700));
    for (const v of ['-tls1', '-tls1_1']) {
      const r = handshake([v, '-cipher', 'DEFAULT:@SECLEVEL=0'], port);
      assert.ok(r.ok, `${v} against a permissive server: ${r.out.slice(-300)}`);
    }
  } finally {
    server.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS 1.0 and 1.1 are refused by the server', () => {
  for (const v of ['-tls1', '-tls1_1']) {
    const r = handshake([v, '-cipher', 'DEFAULT:@SECLEVEL=0']);
    assert.equal(r.ok, false, `${v} was accepted: ${r.protocol} ${r.cipher}`);
  }
});

test('TLS 1.2 and 1.3 are accepted with forward-secret AEAD ciphers', () => {
  const t12 = handshake(['-tls1_2']);
  assert.ok(t12.ok, t12.out.slice(-500));
  assert.match(t12.cipher, /^ECDHE-.*(GCM|CHACHA20)/);
  const t13 = handshake(['-tls1_3']);
  assert.ok(t13.ok, t13.out.slice(-500));
  assert.match(t13.cipher, /^TLS_(AES|CHACHA20)/);
});

test('weak TLS 1.2 ciphers (CBC, RSA key exchange, 3DES, RC4, NULL) are refused', () => {
  for (const c of ['AES128-SHA', 'AES256-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES128-SHA', 'DES-CBC3-SHA', 'RC4-SHA', 'NULL-SHA']) {
    const r = handshake(['-tls1_2', '-cipher', `${c}:@SECLEVEL=0`]);
    assert.equal(r.ok, false, `${c} accepted`);
  }
});

function checkHeaders(r, what) {
  const h = r.headers;
  assert.match(h['strict-transport-security'] || '', /max-age=\d{7,}/, `${what}: HSTS`);
  const csp = h['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/, `${what}: CSP script-src`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${what}: CSP allows inline`);
  assert.match(csp, /frame-ancestors 'none'/, `${what}: frame-ancestors`);
  assert.match(csp, /default-src 'self'/, `${what}: default-src`);
  assert.equal(h['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  assert.ok(h['referrer-policy'], `${what}: Referrer-Policy`);
}

test('security headers on the SPA, its assets, the API, and error answers', async () => {
  const c = srv.client();
  const spa = await c.get('/');
  assert.equal(spa.status, 200);
  checkHeaders(spa, 'SPA');
  assert.doesNotMatch(spa.text, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script in index.html');
  assert.doesNotMatch(spa.text, /<style|\sstyle=/i, 'no inline style in index.html');
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(spa.text);
  if (asset) checkHeaders(await c.get(asset[1]), 'asset');
  checkHeaders(await c.get('/api/health'), 'API 200');
  const e401 = await c.get('/api/workspaces');
  assert.equal(e401.status, 401);
  checkHeaders(e401, 'API 401');
  const e404 = await c.get('/api/nothing-here');
  assert.equal(e404.status, 404);
  checkHeaders(e404, 'API 404');
  const big = await c.req('POST', '/api/login', { body: 'x'.repeat(64 * 1024), headers: { 'Content-Type': 'application/json' } });
  assert.equal(big.status, 413, 'login bodies are capped by nginx');
  checkHeaders(big, 'nginx 413');
});

test('request size limits per route', async () => {
  const c = srv.client();
  await c.login();
  const big = await c.req('POST', '/api/workspaces', { body: JSON.stringify({ name: 'x', description: 'y'.repeat(2 * 1024 * 1024) }), headers: { 'Content-Type': 'application/json' } });
  assert.equal(big.status, 413, 'JSON API bodies are capped at 1 MiB');
});

test('the FastCGI socket is not reachable by other local users', async () => {
  const sock = `${srv.dataDir}/run/fcgi.sock`;
  const st = fs.statSync(sock);
  assert.equal(st.mode & 0o007, 0, `socket mode ${(st.mode & 0o777).toString(8)}`);
  const dir = fs.statSync(`${srv.dataDir}/run`);
  assert.equal(dir.mode & 0o077, 0, `run dir mode ${(dir.mode & 0o777).toString(8)}`);
});
