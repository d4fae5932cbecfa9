// The deployment without a Docker engine: docker/Dockerfile is parsed and
// checked (every COPY source exists or is built by the build stage, only
// Debian 12 packages and npm, the runtime packages cover the binary's
// libraries), then its runtime stage is laid out in a temporary root and
// its entrypoint (docker/start.sh) runs there as a throwaway non-root
// user, with the data volume, a generated certificate and the admin
// password from a secret file; the core end-to-end steps run against it.
// Also: `capatlasd check` and start.sh reject a broken configuration,
// naming the setting.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ndpiFlows } from '../lib/peers.mjs';
import { freePort, pcap, ROOT, startServer } from '../lib/server.mjs';

const BIN = process.env.CAPATLAS_BIN || path.join(ROOT, 'build/capatlasd');
const isRoot = process.getuid && process.getuid() === 0;

// ---- Dockerfile parsing ---------------------------------------------------

function parseDockerfile(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out = [];
  let cur = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw) && cur === '') continue;
    if (/^\s*#/.test(raw)) continue; // comment inside a continued instruction
    const l = raw.replace(/\s+$/, '');
    if (l.endsWith('\\')) {
      cur += l.slice(0, -1) + ' ';
      continue;
    }
    cur += l;
    if (cur.trim()) {
      const m = /^\s*(\w+)\s+(.*)$/.exec(cur);
      out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    }
    cur = '';
  }
  // Group by stage.
  const stages = [];
  for (const ins of out) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ image: m[1], name: m[2] || String(stages.length), ins: [] });
    } else {
      stages.at(-1).ins.push(ins);
    }
  }
  return stages;
}

function copyArgs(args) {
  const words = args.startsWith('[') ? JSON.parse(args) : args.split(/\s+/);
  const flags = {};
  while (words[0].startsWith('--')) {
    const [k, v] = words.shift().slice(2).split('=');
    flags[k] = v;
  }
  return { flags, srcs: words.slice(0, -1), dest: words.at(-1) };
}

function envArgs(args) {
  const env = {};
  for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
  return env;
}

// Package names of `apt-get install` in a RUN line.
function aptPackages(run) {
  const pk = [];
  for (const part of run.split(/&&|;/)) {
    const m = /apt-get\s+install\s+(.*)$/.exec(part);
    if (!m) continue;
    for (const w of m[1].trim().split(/\s+/)) if (w && !w.startsWith('-')) pk.push(w);
  }
  return pk;
}

// The Debian packages docker/install-deps.sh installs (build and test sets).
function installDepsPackages() {
  const sh = fs.readFileSync(path.join(ROOT, 'docker/install-deps.sh'), 'utf8');
  const pk = [];
  for (const m of sh.matchAll(/PKGS="([^"]*)"/g)) for (const w of m[1].split(/\s+/)) if (w && !w.startsWith('$')) pk.push(w);
  return pk;
}

function dockerignored(rel) {
  const pats = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return pats.some((p) => {
    const re = new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*') + '(/|$)');
    return re.test(rel);
  });
}

const stages = parseDockerfile(path.join(ROOT, 'docker/Dockerfile'));
const build = stages[0];
const runtime = stages.at(-1);

describe('docker/Dockerfile', () => {
  test('two stages on Debian 12, the runtime one non-root with a health check on /api/health', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const s of stages) assert.match(s.image, /^debian:(12|bookworm)(-slim)?$/, `stage ${s.name}: ${s.image}`);
    const user = runtime.ins.find((i) => i.op === 'USER');
    assert.ok(user && user.args !== 'root' && user.args !== '0', 'USER is not root');
    const hc = runtime.ins.find((i) => i.op === 'HEALTHCHECK');
    assert.match(hc.args, /\/api\/health/);
    const ep = runtime.ins.find((i) => i.op === 'ENTRYPOINT');
    assert.match(ep.args, /docker\/start\.sh/, 'the entrypoint is the start script make run uses');
    assert.ok(runtime.ins.some((i) => i.op === 'VOLUME'), 'a data volume');
  });

  test('every COPY source exists in the tree (not .dockerignored) or is built by an earlier stage', () => {
    const workdir = (build.ins.find((i) => i.op === 'WORKDIR') || { args: '/' }).args;
    const buildRuns = build.ins.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    // What the build stage's RUN lines produce, and the command that does.
    const produced = [
      [/^build\//, /\bmake\b[^\n]*build\//],
      [/^frontend\/dist(\/|$)/, /\bmake\b[^\n]*\bfrontend\b/],
      [/^docker\/node_modules\//, /install-deps\.sh/],
    ];
    let n = 0;
    for (const s of stages) {
      for (const ins of s.ins.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        assert.equal(ins.op, 'COPY', 'ADD (URLs, archives) is not used');
        const { flags, srcs } = copyArgs(ins.args);
        for (const src of srcs) {
          n++;
          if (flags.from) {
            assert.equal(flags.from, build.name, `${src}: from the build stage`);
            const rel = path.posix.relative(workdir, src);
            assert.ok(!rel.startsWith('..'), `${src} is under the build stage's ${workdir}`);
            const rule = produced.find(([re]) => re.test(rel));
            assert.ok(rule, `${src}: not produced by a known build step`);
            assert.match(buildRuns, rule[1], `${src}: the build stage runs what produces it`);
            assert.ok(fs.existsSync(path.join(ROOT, rel)), `${rel}: produced by make/install-deps here too`);
          } else {
            const rel = src.replace(/\/$/, '');
            assert.ok(fs.existsSync(path.join(ROOT, rel)), `COPY ${src}: missing in the tree`);
            assert.ok(!dockerignored(rel), `COPY ${src}: excluded by .dockerignore`);
          }
        }
      }
    }
    assert.ok(n >= 8, `${n} COPY sources checked`);
  });

  test('only Debian 12 packages (apt) and npm; the runtime packages cover the binary', () => {
    const all = stages.flatMap((s) => s.ins.filter((i) => i.op === 'RUN').map((i) => i.args)).join('\n');
    assert.doesNotMatch(all, /\b(pip3?|gem|cargo|go get|wget)\b|curl[^|\n]*\|\s*(ba)?sh/, 'no other package source');
    const runtimePkgs = runtime.ins.filter((i) => i.op === 'RUN').flatMap((i) => aptPackages(i.args));
    const pkgs = [...new Set([...runtimePkgs, ...installDepsPackages()])];
    assert.ok(runtimePkgs.includes('nginx'));
    // Every name is a Debian 12 package (this machine's apt sources are Debian 12's).
    assert.match(fs.readFileSync('/etc/os-release', 'utf8'), /VERSION_ID="12"/);
    const r = spawnSync('apt-cache', ['show', '--no-all-versions', ...pkgs], { encoding: 'utf8' });
    const found = new Set([...r.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
    for (const p of pkgs) assert.ok(found.has(p), `${p}: not a Debian 12 package`);
    // The libraries capatlasd links against come from packages the runtime stage installs.
    const needed = [...execFileSync('readelf', ['-d', path.join(ROOT, 'build/capatlasd')], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]);
    const cache = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' });
    for (const lib of needed) {
      const m = new RegExp(`^\\s+${lib.replace(/[.+]/g, '\\$&')} \\(libc6,x86-64[^)]*\\) => (\\S+)$`, 'm').exec(cache);
      assert.ok(m, `${lib}: not in the linker cache`);
      const real = fs.realpathSync(m[1]);
      let owner = spawnSync('dpkg', ['-S', real], { encoding: 'utf8' }).stdout;
      if (!owner) owner = spawnSync('dpkg', ['-S', real.replace(/^\/usr/, '')], { encoding: 'utf8' }).stdout;
      const pkg = owner.split(':')[0];
      if (pkg === 'libc6') continue;
      assert.ok(runtimePkgs.includes(pkg), `${lib} comes from ${pkg}, which the runtime stage does not install`);
    }
  });
});

// ---- capatlasd check ----------------------------------------------------------

describe('capatlasd check', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-check-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const check = (args, env = {}) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAPATLAS_')));
    return spawnSync(BIN, ['check', ...args], { env: { ...clean, ...env }, encoding: 'utf8' });
  };

  test('a good file, the environment over it, and --print-env for the start script', () => {
    const f = path.join(dir, 'good.conf');
    fs.writeFileSync(f, `# capatlas\ndata = ${dir}/data\nport = 8443\nimport_workers = 3\nmax_upload = 2g\n`);
    const r = check(['--config', f], { CAPATLAS_PORT: '9000' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /port\s+= 9000\s+\(environment\)/);
    assert.match(r.stdout, /import_workers\s+= 3\s+\(file\)/);
    const e = check(['--print-env'], { CAPATLAS_CONFIG: f });
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stdout, /^CAPATLAS_PORT='8443'$/m);
    assert.match(e.stdout, /^CAPATLAS_MAX_UPLOAD='2147483648'$/m);
    assert.doesNotMatch(e.stdout, /CAPATLAS_API_WORKERS/, 'defaults are left to the script');
  });

  test('a broken configuration is rejected, naming every bad setting and where it came from', () => {
    const f = path.join(dir, 'bad.conf');
    fs.writeFileSync(f, 'api_workers = 0\nport = 70000\nlisten = example\nimport_wrkers = 2\n');
    const r = check(['--config', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /api_workers \(CAPATLAS_API_WORKERS\): expected a whole number from 1 to 64, got "0" \(from .*bad\.conf:1\)/);
    assert.match(r.stderr, /port \(CAPATLAS_PORT\): .*"70000"/);
    assert.match(r.stderr, /listen \(CAPATLAS_LISTEN\): .*"example"/);
    assert.match(r.stderr, /bad\.conf:4: unknown setting "import_wrkers"/);

    const env = check([], { CAPATLAS_MAX_UPLOAD: 'lots', CAPATLAS_CERT: path.join(dir, 'nope.pem'), CAPATLAS_KEY: path.join(dir, 'nope.key') });
    assert.equal(env.status, 1);
    assert.match(env.stderr, /max_upload \(CAPATLAS_MAX_UPLOAD\): .*"lots" \(from environment CAPATLAS_MAX_UPLOAD\)/);
    const files = check([], { CAPATLAS_CERT: path.join(dir, 'nope.pem'), CAPATLAS_KEY: f });
    assert.equal(files.status, 1);
    assert.match(files.stderr, /cert \(CAPATLAS_CERT\): cannot read ".*nope\.pem"/);
    assert.match(files.stderr, /key \(CAPATLAS_KEY\): ".*bad\.conf" holds no PEM PRIVATE KEY/);
    const half = check([], { CAPATLAS_CERT: f });
    assert.match(half.stderr, /cert \(CAPATLAS_CERT\) and key \(CAPATLAS_KEY\) go together/);
  });

  test('the start script refuses a broken configuration before starting anything', () => {
    const data = path.join(dir, 'never');
    const r = spawnSync('bash', [path.join(ROOT, 'docker/start.sh')], {
      env: { ...process.env, CAPATLAS_BIN: BIN, CAPATLAS_DATA: data, CAPATLAS_IMPORT_WORKERS: 'many' },
      encoding: 'utf8',
      timeout: 30000,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /import_workers \(CAPATLAS_IMPORT_WORKERS\): expected a whole number/);
    assert.ok(!fs.existsSync(data), 'nothing was created');
  });
});

// ---- the image layout, run as a non-root user -------------------------------

describe('the image entrypoint in a temporary root, as a non-root user', { skip: !isRoot && 'needs root to create a throwaway user' }, () => {
  let root, user, uid, gid, srv, password, env;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-image-'));
    fs.chmodSync(root, 0o755);
    user = `catest${crypto.randomBytes(3).toString('hex')}`;
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));

    // Lay out the runtime stage: its COPY lines, its ENV, its VOLUME.
    const workdir = (build.ins.find((i) => i.op === 'WORKDIR') || { args: '/' }).args;
    for (const ins of runtime.ins.filter((i) => i.op === 'COPY')) {
      const { flags, srcs, dest } = copyArgs(ins.args);
      for (const src of srcs) {
        let from = flags.from ? path.join(ROOT, path.posix.relative(workdir, src)) : path.join(ROOT, src);
        if (flags.from && path.posix.relative(workdir, src) === 'build/capatlasd') from = BIN; // the ASan build in that run
        const to = path.join(root, dest.endsWith('/') ? path.join(dest, path.basename(src)) : dest);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        execFileSync('cp', ['-a', '--dereference', from, to]);
      }
    }
    execFileSync('chmod', ['-R', 'a+rX', root]);
    const volume = runtime.ins.find((i) => i.op === 'VOLUME').args.replace(/[[\]"]/g, '').trim();
    fs.mkdirSync(path.join(root, volume), { recursive: true });
    fs.chownSync(path.join(root, volume), uid, gid);
    env = {};
    for (const ins of runtime.ins.filter((i) => i.op === 'ENV')) {
      for (const [k, v] of Object.entries(envArgs(ins.args))) {
        env[k] = v.startsWith('/opt/') || v === volume || v.startsWith(volume + '/') ? path.join(root, v) : v;
      }
    }
    // The admin password as a Docker secret: a file readable by the container user only.
    password = crypto.randomBytes(15).toString('base64url');
    const secret = path.join(root, 'run/secrets/capatlas_admin_password');
    fs.mkdirSync(path.dirname(secret), { recursive: true });
    fs.writeFileSync(secret, password + '\n', { mode: 0o400 });
    fs.chownSync(secret, uid, gid);
    // A configuration file as well, as compose would mount it.
    const conf = path.join(root, 'etc/capatlas/capatlas.conf');
    fs.mkdirSync(path.dirname(conf), { recursive: true });
    fs.writeFileSync(conf, 'api_workers = 2\nimport_workers = 1\n', { mode: 0o644 });

    const port = await freePort();
    // Docker gives the container a pipe as stdout, which nginx may reopen as
    // /dev/stdout; here stdout is the harness's log file: let the user open it.
    const logFile = path.join(os.tmpdir(), `capatlas-test-${port}.log`);
    fs.writeFileSync(logFile, '');
    fs.chownSync(logFile, uid, gid);
    const entry = JSON.parse(runtime.ins.find((i) => i.op === 'ENTRYPOINT').args);
    assert.equal(entry[0], '/bin/bash');
    srv = await startServer({
      port,
      dataDir: path.join(root, volume),
      script: path.join(root, entry[1]),
      uid,
      gid,
      adminPassword: password,
      env: {
        ...env,
        HOME: '/nonexistent',
        CAPATLAS_PORT: String(port),
        CAPATLAS_ADMIN_PASSWORD: undefined,
        CAPATLAS_ADMIN_PASSWORD_FILE: secret,
        CAPATLAS_CONFIG: conf,
        CAPATLAS_BIN: undefined,
        CAPATLAS_WEBROOT: undefined,
      },
    });
    env.CAPATLAS_PORT = String(port);
  });

  after(async () => {
    if (srv) {
      const exit = await srv.stop();
      assert.equal(exit.code, 0, `start script exit ${JSON.stringify(exit)}`);
    }
    if (user) spawnSync('userdel', [user]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test('runs as the non-root user with a generated certificate on the data volume', () => {
    assert.ok(fs.existsSync(path.join(srv.dataDir, 'tls/cert.pem')));
    assert.ok(fs.existsSync(path.join(srv.dataDir, 'portal/data.mdb')));
    const ps = execFileSync('ps', ['-eo', 'uid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(srv.dataDir) && /capatlasd serve|nginx/.test(l));
    assert.ok(ps.some((l) => /capatlasd serve/.test(l)), 'capatlasd runs');
    assert.ok(ps.some((l) => /nginx: master/.test(l)), 'nginx runs');
    for (const l of ps) assert.equal(Number(l.trim().split(/\s+/)[0]), uid, l);
    // The image's HEALTHCHECK command, as written.
    const hc = runtime.ins.find((i) => i.op === 'HEALTHCHECK').args.replace(/^.*?CMD\s+/, '');
    const r = spawnSync('sh', ['-c', hc], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  test('end to end: HTTPS, redirect, headers, login with the secret password, import, flows', async () => {
    const c = srv.client();
    const h = await c.get('/api/health?sig=do-not-log-me');
    assert.equal(h.status, 200);
    const res = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: srv.port, path: '/api/health' }, resolve).on('error', reject);
    });
    res.resume();
    assert.ok([301, 302, 307, 308].includes(res.statusCode));
    const spa = await c.get('/');
    assert.equal(spa.status, 200);
    assert.match(spa.headers['content-security-policy'], /script-src 'self'/);
    assert.equal((await c.login('admin', 'wrong-password')).status, 401);
    assert.equal((await c.login('admin', password)).status, 200, 'the password from the secret file');
    const ws = await c.post('/api/workspaces', { name: 'deploy' });
    assert.equal(ws.status, 201, ws.text);
    const file = pcap('http_ipv6.pcap');
    const up = await c.upload(ws.json.workspace.id, file);
    assert.equal(up.status, 202, up.text);
    const job = await c.waitJob(up.json.job.id);
    assert.equal(job.state, 'done', JSON.stringify(job));
    const flows = await c.get(`/api/workspaces/${ws.json.workspace.id}/flows?limit=1`);
    assert.equal(flows.json.total, ndpiFlows(file));
    // Capture files and LMDB belong to the container user.
    assert.equal(fs.statSync(path.join(srv.dataDir, 'portal/data.mdb')).uid, uid);
    // The access log goes to stdout (the container log), without query strings.
    const log = srv.log();
    assert.match(log, /"GET \/api\/health HTTP\/[\d.]+" 200/);
    assert.doesNotMatch(log, /do-not-log-me/);
    assert.doesNotMatch(log, /AddressSanitizer|runtime error|died/);
  });
});
