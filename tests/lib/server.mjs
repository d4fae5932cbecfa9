// Test harness: starts the real capatlas (docker/start.sh: nginx + capatlasd)
// on a free loopback port with a fresh data folder and a generated
// certificate, and gives tests an HTTPS client with a cookie jar and the
// CSRF header.  Nothing is mocked.
//
//   const srv = await startServer();   // { url, port, admin, dataDir, log(), client(), stop() }
//   const c = srv.client(); await c.login(); const r = await c.get('/api/me');
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PCAPS = process.env.CAPATLAS_PCAPS || path.resolve(ROOT, '../shared/pcaps');

export function pcap(name) {
  return path.join(PCAPS, name);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One HTTPS request.  body: undefined, a string/Buffer, or a file path given
// as { file } (streamed).  Resolves { status, headers, text, json }.
export function request(baseUrl, ca, method, urlPath, { headers = {}, body, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(urlPath, baseUrl);
    const req = https.request(
      u,
      { method, headers, ca, timeout, servername: 'localhost', checkServerIdentity: () => undefined },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${urlPath}`)));
    req.on('error', reject);
    if (body && body.file) {
      const st = fs.statSync(body.file);
      req.setHeader('Content-Length', st.size);
      fs.createReadStream(body.file).pipe(req);
    } else {
      if (body !== undefined) req.setHeader('Content-Length', Buffer.byteLength(body));
      req.end(body);
    }
  });
}

export class Client {
  constructor(srv) {
    this.srv = srv;
    this.cookie = null;
    this.csrf = null;
  }

  async req(method, urlPath, { json, body, headers = {} } = {}) {
    const h = { ...headers };
    if (this.cookie) h.Cookie = this.cookie;
    if (this.csrf && method !== 'GET' && method !== 'HEAD') h['X-CSRF-Token'] = this.csrf;
    if (json !== undefined) {
      body = JSON.stringify(json);
      h['Content-Type'] = 'application/json';
    }
    const r = await request(this.srv.url, this.srv.ca, method, urlPath, { headers: h, body });
    const sc = r.headers['set-cookie'];
    if (sc) {
      for (const line of sc) {
        const m = /^(__Host-capatlas)=([^;]*)/.exec(line);
        if (m) this.cookie = m[2] ? `${m[1]}=${m[2]}` : null;
      }
    }
    return r;
  }

  get(p) {
    return this.req('GET', p);
  }

  post(p, json) {
    return this.req('POST', p, { json });
  }

  async login(username = this.srv.admin.username, password = this.srv.admin.password) {
    const r = await this.post('/api/login', { username, password });
    if (r.status === 200) this.csrf = r.json.csrf;
    return r;
  }

  upload(ws, file, name = path.basename(file)) {
    return this.req('POST', `/api/workspaces/${ws}/captures?name=${encodeURIComponent(name)}`, {
      body: { file },
      headers: { 'Content-Type': 'application/octet-stream' },
    });
  }

  // Polls a job until it is done or failed; returns the job object.
  async waitJob(id, timeoutMs = 120000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.get(`/api/jobs/${id}`);
      if (r.status !== 200) throw new Error(`GET /api/jobs/${id}: ${r.status} ${r.text}`);
      if (r.json.job.state === 'done' || r.json.job.state === 'failed') return r.json.job;
      if (Date.now() > end) throw new Error(`job ${id} still ${r.json.job.state}`);
      await sleep(100);
    }
  }
}

export async function startServer(opts = {}) {
  const port = opts.port || (await freePort());
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-test-'));
  const password = opts.adminPassword || crypto.randomBytes(12).toString('base64url');
  const logFile = path.join(os.tmpdir(), `capatlas-test-${port}.log`);
  fs.writeFileSync(logFile, '');
  const log = fs.openSync(logFile, 'a'); // O_APPEND: nginx may reopen it as /dev/stdout
  const env = {
    ...process.env,
    CAPATLAS_DATA: dataDir,
    CAPATLAS_PORT: String(port),
    CAPATLAS_LISTEN: '127.0.0.1',
    CAPATLAS_ADMIN_PASSWORD: password,
    ...(opts.env || {}),
  };
  if (process.env.CAPATLAS_BIN && !(opts.env && opts.env.CAPATLAS_BIN)) env.CAPATLAS_BIN = process.env.CAPATLAS_BIN;
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  // opts.script: another start script (an image layout); opts.uid/gid: run it as that user.
  const child = spawn('bash', [opts.script || path.join(ROOT, 'docker/start.sh')], {
    env,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
    stdio: ['ignore', log, log],
    detached: true,
  });
  let exited = null;
  const exitP = new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      exited = { code, sig };
      resolve(exited);
    }),
  );

  const srv = {
    url: `https://127.0.0.1:${port}`,
    port,
    dataDir,
    logFile,
    admin: { username: 'admin', password },
    ca: null,
    log: () => fs.readFileSync(logFile, 'utf8'),
    client() {
      return new Client(srv);
    },
    // Runs `capatlasd ARGS --data DATA` as the server's own user; returns stdout.
    cli(args, input = '') {
      const bin = path.join(dataDir, 'bin/capatlasd');
      const argv = [...args, '--data', dataDir];
      const asUser = process.getuid && process.getuid() === 0;
      const cmd = asUser ? 'setpriv' : bin;
      const full = asUser
        ? ['--reuid=capatlas', `--regid=${execFileSync('id', ['-g', 'capatlas'], { encoding: 'utf8' }).trim()}`, '--init-groups', '--', bin, ...argv]
        : argv;
      return execFileSync(cmd, full, { input, encoding: 'utf8' });
    },
    // Creates a user with the CLI and returns a logged-in client for it.
    async userClient(name, { admin = false } = {}) {
      const pw = crypto.randomBytes(12).toString('base64url');
      srv.cli(['user', 'add', name, ...(admin ? ['--admin'] : [])], pw + '\n');
      const c = new Client(srv);
      const r = await c.login(name, pw);
      if (r.status !== 200) throw new Error(`login as ${name}: ${r.status} ${r.text}`);
      return c;
    },
    async stop({ keepData = false } = {}) {
      if (!exited) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {}
        const t = setTimeout(() => {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {}
        }, 15000);
        await exitP;
        clearTimeout(t);
      }
      fs.closeSync(log);
      if (!keepData && !opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      return exited;
    },
  };

  const certFile = path.join(dataDir, 'tls/cert.pem');
  const end = Date.now() + (opts.startTimeoutMs || 60000);
  for (;;) {
    if (exited) throw new Error(`capatlas exited during start (${JSON.stringify(exited)}):\n${srv.log()}`);
    if (fs.existsSync(certFile)) {
      try {
        srv.ca = fs.readFileSync(certFile);
        const r = await request(srv.url, srv.ca, 'GET', '/api/health', { timeout: 2000 });
        if (r.status === 200) break;
      } catch {
        /* not up yet */
      }
    }
    if (Date.now() > end) {
      await srv.stop();
      throw new Error(`capatlas did not answer /api/health in time:\n${srv.log()}`);
    }
    await sleep(100);
  }
  return srv;
}
