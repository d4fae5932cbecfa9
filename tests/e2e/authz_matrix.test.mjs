// The authorisation matrix: every API route × every role, through the real
// stack.  Routes come from the binary's own table (`capatlasd routes`), so
// this test FAILS when a route is added without an entry in MATRIX below.
//
// Roles: anon (no credentials), other (a user with no access), viewer and
// editor (shares of the workspace), owner, admin (portal admin, no share).
// Every id in a path is real and belongs to the owner's workspace, so
// "other" and "admin" are really guessing ids of someone else's workspace,
// capture, job, flow, export and share: they must get 404, exactly like
// an unknown id.
//
// How to add an entry (one per "METHOD pattern" of fcgi/router.c):
//   'POST /api/workspaces/{ws}/things': {
//     action: 'import',                 // must equal the route's action in the table
//     expect: IMPORT,                   // a role → status map (presets below), or your own
//     body: () => ({ name: 'x' }),      // optional JSON body (fx, role) => object
//     query: '?field=proto',            // optional query string
//     fresh: async (fx, role) => ({ thing: await ... }), // optional: new ids per role, for
//   },                                  //   destructive routes; merged over the fixture ids
// Expectations: a number is an exact status; 'ok' means authorisation let it
// through (2xx, or a 400/409/413/415/422 from the handler about the input).
// Path placeholders ({ws}, {job}, {flow}, {cap}, {user}, {token},
// {session}; {*} is an IP address) are filled from the fixture (fx) or
// from fresh().
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import { assertNoSecrets, SecretBag } from '../lib/secrets.mjs';
import { Client, pcap, startServer } from '../lib/server.mjs';

const ROLES = ['anon', 'other', 'viewer', 'editor', 'owner', 'admin'];
const PUBLIC = { anon: 'ok', other: 'ok', viewer: 'ok', editor: 'ok', owner: 'ok', admin: 'ok' };
const USER = { ...PUBLIC, anon: 401 };
const READ = { anon: 401, other: 404, viewer: 'ok', editor: 'ok', owner: 'ok', admin: 404 };
const EXPORT = READ;
const IMPORT = { anon: 401, other: 404, viewer: 403, editor: 'ok', owner: 'ok', admin: 404 };
const DELETE = IMPORT;
const MANAGE = { anon: 401, other: 404, viewer: 403, editor: 403, owner: 'ok', admin: 404 };
const ADMIN = { anon: 401, other: 403, viewer: 403, editor: 403, owner: 403, admin: 'ok' };
// Things that belong to one user (their tokens, their sessions): others cannot even see them.
const OWN = { anon: 401, other: 404, viewer: 404, editor: 404, owner: 'ok', admin: 404 };

const upload = (file) => ({ raw: { file }, headers: { 'Content-Type': 'application/octet-stream' } });

export const MATRIX = {
  'GET /api/health': { action: 'public', expect: PUBLIC },
  'POST /api/login': { action: 'public', expect: PUBLIC, body: () => ({}) },
  'POST /api/logout': { action: 'user', expect: USER, freshClient: true },
  'GET /api/me': { action: 'user', expect: USER },
  'GET /api/workspaces': { action: 'user', expect: USER },
  'POST /api/workspaces': { action: 'user', expect: USER, body: (fx, role) => ({ name: `made by ${role}` }) },
  'GET /api/workspaces/{ws}': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/captures': { action: 'read', expect: READ },
  'POST /api/workspaces/{ws}/captures': { action: 'import', expect: IMPORT, query: '?name=dns.pcap', send: upload(pcap('dns.pcap')) },
  'PUT /api/workspaces/{ws}/captures': { action: 'import', expect: IMPORT, query: '?name=dns.pcap', send: upload(pcap('dns.pcap')) },
  'POST /api/workspaces/{ws}/imports': { action: 'import', expect: IMPORT, body: () => ({ url: 'https://127.0.0.1:9/none.pcap' }) },
  'POST /api/workspaces/{ws}/imports/list': { action: 'import', expect: IMPORT, body: () => ({ url: 'https://127.0.0.1:9/none' }) },
  'GET /api/jobs/{job}': { action: 'read', expect: READ },
  'POST /api/jobs/{job}/cancel': { action: 'import', expect: IMPORT },
  'GET /api/workspaces/{ws}/flows': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/flows/{flow}': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/flows/{flow}/pcap': { action: 'export', expect: EXPORT },
  'GET /api/workspaces/{ws}/summary': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/aggregate': { action: 'read', expect: READ, query: '?by=proto' },
  'GET /api/workspaces/{ws}/timeline': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/ips/{*}': { action: 'read', expect: READ }, // {*} = an address (fx.ip)
  'GET /api/workspaces/{ws}/graph': { action: 'read', expect: READ },
  'GET /api/workspaces/{ws}/values': { action: 'read', expect: READ, query: '?field=proto' },
  'GET /api/workspaces/{ws}/export': { action: 'export', expect: EXPORT, query: '?format=csv' },
  'DELETE /api/workspaces/{ws}/captures/{cap}': {
    action: 'delete', expect: DELETE, fresh: async (fx) => ({ cap: (await fx.freshCapture()).capture }),
  },
  // accounts, tokens, users, sharing, audit
  'POST /api/me/password': { action: 'user', expect: USER, body: () => ({ current: 'not-the-password', new: 'whatever-new-password' }) },
  'GET /api/me/sessions': { action: 'user', expect: USER },
  'DELETE /api/me/sessions/{session}': { action: 'user', expect: OWN, fresh: async (fx) => ({ session: await fx.freshSession() }) },
  'GET /api/tokens': { action: 'user', expect: USER },
  'POST /api/tokens': { action: 'user', expect: USER, body: () => ({ name: 'matrix' }) },
  'DELETE /api/tokens/{token}': { action: 'user', expect: OWN, fresh: async (fx) => ({ token: await fx.freshToken() }) },
  'GET /api/users': { action: 'admin', expect: ADMIN },
  'POST /api/users': { action: 'admin', expect: ADMIN, body: () => ({ name: `u${crypto.randomBytes(4).toString('hex')}`, password: 'a-long-enough-password' }) },
  'GET /api/users/{user}': { action: 'admin', expect: ADMIN },
  'PATCH /api/users/{user}': { action: 'admin', expect: ADMIN, body: () => ({ quota: null }) },
  'DELETE /api/users/{user}': { action: 'admin', expect: ADMIN, fresh: async (fx) => ({ user: await fx.freshUser() }) },
  'GET /api/audit': { action: 'admin', expect: ADMIN },
  'PATCH /api/workspaces/{ws}': { action: 'manage', expect: MANAGE, body: () => ({ description: 'changed' }) },
  'DELETE /api/workspaces/{ws}': { action: 'manage', expect: MANAGE, fresh: async (fx) => ({ ws: await fx.freshWs() }) },
  'POST /api/workspaces/{ws}/transfer': {
    action: 'manage', expect: MANAGE, body: () => ({ user: 'mx-other' }), fresh: async (fx) => ({ ws: await fx.freshWs() }),
  },
  'GET /api/workspaces/{ws}/shares': { action: 'read', expect: READ },
  'POST /api/workspaces/{ws}/shares': { action: 'manage', expect: MANAGE, body: () => ({ user: 'mx-viewer', role: 'viewer' }) },
  'DELETE /api/workspaces/{ws}/shares/{user}': {
    action: 'manage', expect: MANAGE, fresh: async (fx) => ({ ws: await fx.freshWs(), user: fx.ids.viewer }),
  },
};

let srv;
const bag = new SecretBag();
const clients = {};
const passwords = {};
const fx = { ids: {} };
let routes = [];

async function ok(r, what) {
  assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.text}`);
  return r.json;
}

async function loginAs(role) {
  const c = new Client(srv);
  if (role === 'anon') return c;
  const name = role === 'admin' ? srv.admin.username : `mx-${role}`;
  const pw = role === 'admin' ? srv.admin.password : passwords[role];
  const r = await c.login(name, pw);
  assert.equal(r.status, 200, `login ${role}: ${r.text}`);
  bag.rememberClient(c);
  return c;
}

before(async () => {
  srv = await startServer({ env: { CAPATLAS_LOGIN_RATE: '6000r/m', CAPATLAS_LOGIN_BURST: '500' } });
  bag.remember(srv.admin.password);
  clients.anon = new Client(srv);
  clients.admin = await loginAs('admin');
  for (const role of ['other', 'viewer', 'editor', 'owner']) {
    passwords[role] = crypto.randomBytes(12).toString('base64url');
    bag.remember(passwords[role]);
    const j = await ok(await clients.admin.post('/api/users', { name: `mx-${role}`, password: passwords[role] }), `create ${role}`);
    fx.ids[role] = j.user.id;
    clients[role] = await loginAs(role);
  }
  const owner = clients.owner;
  fx.freshWs = async () => {
    const w = (await ok(await owner.post('/api/workspaces', { name: 'matrix' }), 'create ws')).workspace.id;
    await ok(await owner.post(`/api/workspaces/${w}/shares`, { user: 'mx-viewer', role: 'viewer' }), 'share viewer');
    await ok(await owner.post(`/api/workspaces/${w}/shares`, { user: 'mx-editor', role: 'editor' }), 'share editor');
    return w;
  };
  fx.freshCapture = async () => {
    const j = await ok(await owner.upload(fx.ws, pcap('dns.pcap')), 'upload');
    await owner.waitJob(j.job.id);
    return { capture: j.capture.id, job: j.job.id };
  };
  fx.freshSession = async () => {
    const c = await loginAs('owner');
    const s = (await ok(await c.get('/api/me/sessions'), 'sessions')).sessions.find((x) => x.current);
    return s.id;
  };
  fx.freshToken = async () => {
    const j = await ok(await owner.post('/api/tokens', { name: 'victim' }), 'token');
    bag.remember(j.secret);
    return j.token.id;
  };
  fx.freshUser = async () => {
    const name = `victim${crypto.randomBytes(4).toString('hex')}`;
    return (await ok(await clients.admin.post('/api/users', { name, password: 'victim-password-1' }), 'victim')).user.id;
  };
  fx.ws = await fx.freshWs();
  const cap = await fx.freshCapture();
  fx.capture = cap.capture;
  fx.cap = cap.capture;
  fx.job = cap.job;
  const flows = await ok(await owner.get(`/api/workspaces/${fx.ws}/flows?limit=1`), 'flows');
  assert.ok(flows.flows.length > 0, 'the fixture capture has flows');
  fx.flow = flows.flows[0].id;
  fx.ip = flows.flows[0].src;
  fx.user = fx.ids.other;
  fx.token = await fx.freshToken();
  fx.session = await fx.freshSession();
  routes = JSON.parse(srv.cli(['routes']));
});

after(async () => {
  if (!srv) return;
  await srv.stop({ keepData: true });
  assertNoSecrets(srv, bag);
  (await import('node:fs')).rmSync(srv.dataDir, { recursive: true, force: true });
});

function fill(pattern, ids) {
  return pattern.replace(/\{([\w*]+)\}/g, (_, name) => {
    const k = name === '*' ? 'ip' : name;
    assert.ok(ids[k] !== undefined, `no fixture id for {${k}} in ${pattern}: add it to fresh()`);
    return encodeURIComponent(String(ids[k]));
  });
}

function allowed(status) {
  return (status >= 200 && status < 300) || [400, 409, 413, 415, 422].includes(status);
}

test('every route in the table has a matrix entry with its action', () => {
  assert.ok(routes.length >= 20, `capatlasd routes listed ${routes.length} routes`);
  const missing = [];
  for (const r of routes) {
    const key = `${r.method} ${r.pattern}`;
    const e = MATRIX[key];
    if (!e) {
      missing.push(key);
      continue;
    }
    assert.notEqual(r.action, 'unset', `${key} has no action in fcgi/router.c`);
    assert.equal(r.action, e.action, `${key}: the table says ${r.action}, the matrix ${e.action}`);
  }
  assert.deepEqual(missing, [], `routes without an entry in tests/e2e/authz_matrix.test.mjs: ${missing.join(', ')}`);
});

test('every role gets the expected status on every route', async () => {
  const failures = [];
  let n = 0;
  for (const r of routes) {
    const key = `${r.method} ${r.pattern}`;
    const e = MATRIX[key];
    if (!e) continue;
    for (const role of ROLES) {
      const ids = { ...fx, ...(e.fresh ? await e.fresh(fx, role) : {}) };
      const c = e.freshClient ? await loginAs(role) : clients[role];
      const p = fill(r.pattern, ids) + (e.query || '');
      let res;
      if (e.send) res = await c.req(r.method, p, { body: e.send.raw, headers: e.send.headers });
      else res = await c.req(r.method, p, e.body ? { json: e.body(fx, role) } : {});
      n++;
      const want = e.expect[role];
      const good = want === 'ok' ? allowed(res.status) : res.status === want;
      if (!good) failures.push(`${key} as ${role}: got ${res.status} (want ${want}) ${res.text.slice(0, 120)}`);
      if (res.status === 404 && res.json) assert.ok(!/forbidden|not yours|permission/i.test(res.json.error), `${key}: a 404 that tells`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${n} checks failed`);
});

test('an unknown workspace and a forbidden one answer the same 404', async () => {
  const forbidden = await clients.other.get(`/api/workspaces/${fx.ws}`);
  const unknown = await clients.other.get('/api/workspaces/987654321');
  assert.equal(forbidden.status, 404);
  assert.equal(unknown.status, 404);
  assert.deepEqual(forbidden.json, unknown.json);
  const fj = await clients.other.get(`/api/jobs/${fx.job}`);
  const uj = await clients.other.get('/api/jobs/987654321');
  assert.equal(fj.status, 404);
  assert.deepEqual(fj.json, uj.json);
  for (const p of [`/api/workspaces/${fx.ws}/flows/${fx.flow}`, `/api/workspaces/${fx.ws}/captures`, `/api/workspaces/${fx.ws}/shares`]) {
    assert.equal((await clients.other.get(p)).status, 404, p);
    assert.equal((await clients.admin.get(p)).status, 404, p);
  }
});

test('a read-only API token may GET what its owner may, and nothing else', async () => {
  const t = await ok(await clients.owner.post('/api/tokens', { name: 'ro', readonly: true }), 'ro token');
  bag.remember(t.secret);
  const bearer = new Client(srv);
  const auth = { Authorization: `Bearer ${t.secret}` };
  const failures = [];
  for (const r of routes) {
    const e = MATRIX[`${r.method} ${r.pattern}`];
    if (!e || r.action === 'public') continue;
    if (r.method !== 'GET') {
      const p = fill(r.pattern, fx) + (e.query || '');
      const res = await bearer.req(r.method, p, { headers: auth, ...(e.body ? { json: e.body(fx, 'owner') } : {}) });
      if (res.status !== 403) failures.push(`${r.method} ${r.pattern}: ${res.status}`);
    } else if (e.expect.owner === 'ok') {
      const res = await bearer.req('GET', fill(r.pattern, fx) + (e.query || ''), { headers: auth });
      if (!allowed(res.status)) failures.push(`GET ${r.pattern}: ${res.status} ${res.text.slice(0, 80)}`);
    }
  }
  assert.deepEqual(failures, []);
});
