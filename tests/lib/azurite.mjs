// Azurite (the Azure Storage emulator, from npm) for the URL-import tests:
// started over HTTPS on a free loopback port with a generated test
// certificate, in strict mode (no --loose), and the SAS signing of the real
// service done here with node:crypto over the documented strings-to-sign
// and the emulator's well-known account key.  Nothing is mocked.
//
//   const az = await startAzurite();
//   await az.createContainer('caps');
//   await az.putBlob('caps', 'a.pcap', fs.readFileSync(file));
//   const url = az.blobUrl('caps', 'a.pcap', az.serviceSas({ container: 'caps', blob: 'a.pcap' }));
//   await az.stop();
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

import { freePort, ROOT } from './server.mjs';

export const ACCOUNT = 'devstoreaccount1';
// The emulator's documented, public development key.
export const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const SV = '2021-08-06';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A self-signed certificate for localhost and 127.0.0.1, made once per run.
export function testCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (!fs.existsSync(cert)) {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    fs.chmodSync(key, 0o644);
    fs.chmodSync(dir, 0o755);
  }
  return { cert, key };
}

function hmac(s) {
  return crypto.createHmac('sha256', Buffer.from(ACCOUNT_KEY, 'base64')).update(s, 'utf8').digest('base64');
}

// ISO 8601 without milliseconds, as the service expects in st/se.
export function sasTime(d) {
  return new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// Service SAS (blob: sr=b, container: sr=c), version 2020-12-06 and later:
// sp, st, se, canonicalized resource, si, sip, spr, sv, sr, snapshot, ses,
// rscc, rscd, rsce, rscl, rsct -- one per line.
export function serviceSas({ container, blob, perms = 'r', expiry = Date.now() + 3600e3, start, resource }) {
  const sr = resource || (blob ? 'b' : 'c');
  const se = sasTime(expiry);
  const st = start ? sasTime(start) : '';
  const canon = `/blob/${ACCOUNT}/${container}${sr === 'b' ? `/${blob}` : ''}`;
  const sts = [perms, st, se, canon, '', '', 'https', SV, sr, '', '', '', '', '', '', ''].join('\n');
  const q = new URLSearchParams();
  q.set('sv', SV);
  if (st) q.set('st', st);
  q.set('se', se);
  q.set('sr', sr);
  q.set('sp', perms);
  q.set('spr', 'https');
  q.set('sig', hmac(sts));
  return q.toString();
}

// Account SAS (for setting up containers and blobs): account, sp, ss, srt,
// st, se, sip, spr, sv, ses, and a final empty line.
export function accountSas({ perms = 'racwdl', expiry = Date.now() + 3600e3 } = {}) {
  const se = sasTime(expiry);
  const sts = [ACCOUNT, perms, 'b', 'sco', '', se, '', 'https', SV, '', ''].join('\n');
  const q = new URLSearchParams({ sv: SV, ss: 'b', srt: 'sco', sp: perms, se, spr: 'https' });
  q.set('sig', hmac(sts));
  return q.toString();
}

// The sig= value of a SAS query string (to grep logs and answers for).
export function sigOf(sas) {
  return new URLSearchParams(sas).get('sig');
}

// memory: blobs kept in Azurite's memory instead of its files (the import
// benchmark: on a small machine the emulator's own file reads -- a thread-pool
// hop per 64 KiB -- would compete with the import for CPU that a real
// storage account does not take from it).
export async function startAzurite({ dir, memory = false } = {}) {
  const base = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-azurite-'));
  fs.chmodSync(base, 0o755);
  const tls = testCert(base);
  const location = path.join(base, 'data');
  fs.mkdirSync(location, { recursive: true });
  const port = await freePort();
  const bin = path.join(ROOT, 'tests/node_modules/.bin/azurite-blob');
  const logFile = path.join(base, 'azurite.log');
  const log = fs.openSync(logFile, 'w');
  const child = spawn(bin, [
    '--blobHost', '127.0.0.1', '--blobPort', String(port),
    ...(memory ? ['--inMemoryPersistence'] : ['--location', location]),
    '--cert', tls.cert, '--key', tls.key, '--skipApiVersionCheck', '--disableTelemetry', '--silent',
  ], { stdio: ['ignore', log, log] });
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  const ca = fs.readFileSync(tls.cert);
  const az = {
    port,
    url: `https://127.0.0.1:${port}/${ACCOUNT}`,
    ca,
    certFile: tls.cert,
    keyFile: tls.key,
    dir: base,
    log: () => fs.readFileSync(logFile, 'utf8'),
    serviceSas,
    accountSas,
    blobUrl(container, blob, sas, host = `127.0.0.1:${port}`) {
      const p = blob.split('/').map(encodeURIComponent).join('/');
      return `https://${host}/${ACCOUNT}/${container}/${p}${sas ? `?${sas}` : ''}`;
    },
    containerUrl(container, sas, host = `127.0.0.1:${port}`) {
      return `https://${host}/${ACCOUNT}/${container}/${sas ? `?${sas}` : ''}`;
    },
    request(method, urlPath, { headers = {}, body } = {}) {
      return new Promise((resolve, reject) => {
        const req = https.request(
          `https://127.0.0.1:${port}${urlPath}`,
          { method, headers, ca, servername: 'localhost' },
          (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
          },
        );
        req.on('error', reject);
        if (body && body.file) {
          req.setHeader('Content-Length', fs.statSync(body.file).size);
          fs.createReadStream(body.file).pipe(req);
        } else {
          if (body !== undefined) req.setHeader('Content-Length', Buffer.byteLength(body));
          req.end(body);
        }
      });
    },
    async createContainer(name) {
      const r = await az.request('PUT', `/${ACCOUNT}/${name}?restype=container&${accountSas()}`, { headers: { 'x-ms-version': SV } });
      if (r.status !== 201 && r.status !== 409) throw new Error(`create container ${name}: ${r.status} ${r.text}`);
    },
    // Put Blob (block blob, one request); data is a Buffer or { file }.
    async putBlob(container, name, data) {
      const p = name.split('/').map(encodeURIComponent).join('/');
      const r = await az.request('PUT', `/${ACCOUNT}/${container}/${p}?${accountSas()}`, {
        headers: { 'x-ms-version': SV, 'x-ms-blob-type': 'BlockBlob', 'Content-Type': 'application/octet-stream' },
        body: data,
      });
      if (r.status !== 201) throw new Error(`put blob ${name}: ${r.status} ${r.text}`);
      return r;
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        for (let i = 0; i < 50 && !exited; i++) await sleep(100);
        if (!exited) child.kill('SIGKILL');
      }
      fs.closeSync(log);
      if (!dir) fs.rmSync(base, { recursive: true, force: true });
    },
  };
  const end = Date.now() + 30000;
  for (;;) {
    if (exited) throw new Error(`azurite exited: ${JSON.stringify(exited)}\n${az.log()}`);
    try {
      const r = await az.request('GET', `/${ACCOUNT}?comp=list&${accountSas()}`, { headers: { 'x-ms-version': SV } });
      if (r.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) {
      await az.stop();
      throw new Error(`azurite did not start:\n${az.log()}`);
    }
    await sleep(200);
  }
  return az;
}
