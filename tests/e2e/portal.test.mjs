// The team portal (issue 5) through the real stack: accounts, sessions,
// CSRF, API tokens, lockout and rate limits, sharing and transfer,
// end-of-life deletion, quotas, and the audit log.  Timings come from
// environment variables read by capatlasd so nothing waits hours:
// CAPATLAS_SESSION_IDLE / _MAX_AGE, CAPATLAS_LOGIN_MAX_FAILS / _LOCK_SECONDS,
// CAPATLAS_HOUSEKEEPING_SECONDS, CAPATLAS_LOGIN_RATE / _BURST (nginx).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertNoSecrets, SecretBag } from '../lib/secrets.mjs';
import { Client, pcap, startServer } from '../lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bag = new SecretBag();
let srv;
let admin;

// Creates a user through the admin API; returns { name, password, id, client }.
async function makeUser(name, extra = {}) {
  const password = crypto.randomBytes(12).toString('base64url');
  bag.remember(password);
  const r = await admin.post('/api/users', { name, password, ...extra });
  assert.equal(r.status, 201, r.text);
  const client = new Client(srv);
  const l = await client.login(name, password);
  assert.equal(l.status, 200, l.text);
  bag.rememberClient(client);
  return { name, password, id: r.json.user.id, client };
}

before(async () => {
  srv = await startServer({
    env: {
      CAPATLAS_LOGIN_RATE: '6000r/m',
      CAPATLAS_LOGIN_BURST: '500',
      CAPATLAS_LOGIN_MAX_FAILS: '3',
      CAPATLAS_LOGIN_LOCK_SECONDS: '2',
      CAPATLAS_HOUSEKEEPING_SECONDS: '1',
    },
  });
  bag.remember(srv.admin.password);
  admin = srv.client();
  assert.equal((await admin.login()).status, 200);
  bag.rememberClient(admin);
});

after(async () => {
  if (!srv) return;
  await srv.stop({ keepData: true });
  assertNoSecrets(srv, bag);
  fs.rmSync(srv.dataDir, { recursive: true, force: true });
});

describe('accounts', () => {
  test('an admin creates, disables, re-enables, resets and deletes users', async () => {
    const u = await makeUser('alice');
    const list = await admin.get('/api/users');
    assert.ok(list.json.users.some((x) => x.name === 'alice' && x.admin === false && x.disabled === false));
    assert.ok(list.json.users.every((x) => !('password' in x)), 'no hash in the user list');

    assert.equal((await admin.req('PATCH', `/api/users/${u.id}`, { json: { disabled: true } })).status, 200);
    assert.equal((await u.client.get('/api/me')).status, 401, 'disabling ends the sessions');
    assert.equal((await new Client(srv).login('alice', u.password)).status, 401, 'a disabled user cannot log in');
    assert.equal((await admin.req('PATCH', `/api/users/${u.id}`, { json: { disabled: false } })).status, 200);

    const fresh = 'reset-password-' + crypto.randomBytes(6).toString('hex');
    bag.remember(fresh);
    assert.equal((await admin.req('PATCH', `/api/users/${u.id}`, { json: { password: fresh } })).status, 200);
    assert.equal((await new Client(srv).login('alice', u.password)).status, 401, 'old password gone');
    assert.equal((await new Client(srv).login('alice', fresh)).status, 200);

    const short = await admin.post('/api/users', { name: 'shorty', password: 'short' });
    assert.equal(short.status, 400);
    assert.equal(short.json.field, 'password');
    assert.match(short.json.error, /at least 10/);
    assert.equal((await admin.post('/api/users', { name: 'alice', password: 'long-enough-pass' })).status, 409);

    const me = (await admin.get('/api/me')).json.user;
    assert.equal((await admin.req('PATCH', `/api/users/${me.id}`, { json: { disabled: true } })).status, 400, 'not yourself');
    assert.equal((await admin.req('DELETE', `/api/users/${u.id}`)).status, 200);
    assert.equal((await new Client(srv).login('alice', fresh)).status, 401);
    assert.equal((await admin.get(`/api/users/${u.id}`)).status, 404);
  });

  test('the command line manages users too', async () => {
    srv.cli(['user', 'add', 'cliuser'], 'cli-user-password\n');
    bag.remember('cli-user-password');
    assert.match(srv.cli(['user', 'list']), /\tcliuser\tuser\t/);
    srv.cli(['user', 'disable', 'cliuser']);
    assert.match(srv.cli(['user', 'list']), /\tcliuser\tuser,disabled\t/);
    assert.equal((await new Client(srv).login('cliuser', 'cli-user-password')).status, 401);
    srv.cli(['user', 'enable', 'cliuser']);
    assert.equal((await new Client(srv).login('cliuser', 'cli-user-password')).status, 200);
    srv.cli(['user', 'delete', 'cliuser']);
    assert.doesNotMatch(srv.cli(['user', 'list']), /cliuser/);
  });

  test('users change their own password; other sessions are revoked', async () => {
    const u = await makeUser('bob');
    const second = new Client(srv);
    assert.equal((await second.login('bob', u.password)).status, 200);
    const wrong = await u.client.post('/api/me/password', { current: 'not-my-password', new: 'brand-new-password' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.field, 'current');
    const tooShort = await u.client.post('/api/me/password', { current: u.password, new: 'short' });
    assert.equal(tooShort.status, 400);
    assert.equal(tooShort.json.field, 'new');
    bag.remember('brand-new-password');
    assert.equal((await u.client.post('/api/me/password', { current: u.password, new: 'brand-new-password' })).status, 200);
    assert.equal((await u.client.get('/api/me')).status, 200, 'this session stays');
    assert.equal((await second.get('/api/me')).status, 401, 'the other session is revoked');
    assert.equal((await new Client(srv).login('bob', 'brand-new-password')).status, 200);
  });

  test('sessions are listed and revoked; logout revokes; cookies are __Host-, Secure, HttpOnly, SameSite=Strict', async () => {
    const u = await makeUser('carol');
    const other = new Client(srv);
    const r = await other.login('carol', u.password);
    const cookie = r.headers['set-cookie'].join('\n');
    assert.match(cookie, /^__Host-capatlas=[0-9a-f]{64}; Path=\/; Secure; HttpOnly; SameSite=Strict/);
    bag.rememberClient(other);
    const list = (await u.client.get('/api/me/sessions')).json.sessions;
    assert.equal(list.length, 2, JSON.stringify(list));
    assert.equal(list.filter((s) => s.current).length, 1);
    assert.ok(list.every((s) => typeof s.id === 'number' && !('csrf' in s) && !('token' in s)));
    const target = (await other.get('/api/me/sessions')).json.sessions.find((s) => s.current);
    assert.equal((await u.client.req('DELETE', `/api/me/sessions/${target.id}`)).status, 200);
    assert.equal((await other.get('/api/me')).status, 401);
    const oldCookie = u.client.cookie;
    assert.equal((await u.client.post('/api/logout')).status, 200);
    const replay = new Client(srv);
    replay.cookie = oldCookie;
    assert.equal((await replay.get('/api/me')).status, 401, 'a logged-out cookie is dead');
  });
});

describe('CSRF and API tokens', () => {
  test('state changes need the CSRF header with a session cookie', async () => {
    const u = await makeUser('dave');
    const c = u.client;
    const csrf = c.csrf;
    c.csrf = null;
    const none = await c.post('/api/workspaces', { name: 'x' });
    assert.equal(none.status, 403);
    assert.equal(none.json.field, 'X-CSRF-Token');
    c.csrf = 'f'.repeat(64);
    assert.equal((await c.post('/api/workspaces', { name: 'x' })).status, 403);
    c.csrf = csrf;
    assert.equal((await c.post('/api/workspaces', { name: 'x' })).status, 201);
  });

  test('tokens: shown once, read-only scope, expiry, revocation', async () => {
    const u = await makeUser('erin');
    const ws = (await u.client.post('/api/workspaces', { name: 'tok' })).json.workspace.id;
    const full = await u.client.post('/api/tokens', { name: 'ci' });
    assert.equal(full.status, 201);
    assert.match(full.json.secret, /^cat_[0-9a-f]{64}$/);
    bag.remember(full.json.secret);
    const ro = await u.client.post('/api/tokens', { name: 'ro', readonly: true });
    bag.remember(ro.json.secret);
    const listed = (await u.client.get('/api/tokens')).json.tokens;
    assert.equal(listed.length, 2);
    assert.ok(listed.every((t) => !('secret' in t) && !JSON.stringify(t).includes(full.json.secret.slice(4, 20))), 'secret shown once');

    const bearer = (secret) => {
      const c = new Client(srv);
      return (m, p, json) => c.req(m, p, { headers: { Authorization: `Bearer ${secret}` }, json });
    };
    const f = bearer(full.json.secret);
    const r = bearer(ro.json.secret);
    assert.equal((await f('GET', `/api/workspaces/${ws}`)).status, 200);
    assert.equal((await f('POST', '/api/workspaces', { name: 'by token' })).status, 201, 'no CSRF needed with a token');
    assert.equal((await r('GET', `/api/workspaces/${ws}/flows`)).status, 200);
    const denied = await r('POST', '/api/workspaces', { name: 'nope' });
    assert.equal(denied.status, 403);
    assert.match(denied.json.error, /read-only/);
    assert.equal((await f('POST', '/api/tokens', { name: 'from a token' })).status, 403, 'tokens do not mint tokens');

    const exp = await u.client.post('/api/tokens', { name: 'short', expires: Math.floor(Date.now() / 1000) + 2 });
    assert.equal(exp.status, 201);
    bag.remember(exp.json.secret);
    const e = bearer(exp.json.secret);
    assert.equal((await e('GET', '/api/me')).status, 200);

    assert.equal((await u.client.req('DELETE', `/api/tokens/${full.json.token.id}`)).status, 200);
    assert.equal((await f('GET', '/api/me')).status, 401, 'revoked');
    assert.equal((await bearer('cat_' + '0'.repeat(64))('GET', '/api/me')).status, 401, 'unknown');
    await sleep(3000);
    assert.equal((await e('GET', '/api/me')).status, 401, 'expired');
  });
});

describe('login throttling', () => {
  test('an account locks after N failed logins, with back-off; unknown names alike', async () => {
    const u = await makeUser('frank');
    const c = new Client(srv);
    for (let i = 0; i < 3; i++) assert.equal((await c.login('frank', 'wrong-password-' + i)).status, 401);
    const locked = await c.login('frank', u.password);
    assert.equal(locked.status, 429, 'the right password is refused while locked');
    assert.match(locked.json.error, /too many failed logins/);
    for (let i = 0; i < 3; i++) await c.login('nobody-at-all', 'wrong-password');
    const ghost = await c.login('nobody-at-all', 'wrong-password');
    assert.equal(ghost.status, 429, 'an unknown name locks the same way');
    assert.equal(ghost.json.error.replace(/\d+/g, 'N'), locked.json.error.replace(/\d+/g, 'N'));
    await sleep(2200);
    assert.equal((await c.login('frank', u.password)).status, 200, 'unlocked after the lock time');
  });

  test('unknown user and wrong password: same status, same message, similar time', async () => {
    const times = { known: [], unknown: [] };
    for (let i = 0; i < 2; i++) {
      for (const [k, name] of [['known', 'admin'], ['unknown', `ghost${i}`]]) {
        const t0 = performance.now();
        const r = await new Client(srv).login(name, 'definitely-wrong');
        times[k].push(performance.now() - t0);
        assert.equal(r.status, 401);
        assert.equal(r.json.error, 'wrong username or password');
      }
    }
    const avg = (a) => a.reduce((x, y) => x + y, 0) / a.length;
    const [k, u] = [avg(times.known), avg(times.unknown)];
    assert.ok(Math.abs(k - u) < Math.max(100, 0.5 * Math.max(k, u)), JSON.stringify(times));
    // Clear admin's failure count for the other tests.
    assert.equal((await new Client(srv).login()).status, 200);
  });
});

describe('workspaces', () => {
  test('sharing as viewer and editor, then transfer', async () => {
    const o = await makeUser('olga');
    const v = await makeUser('victor');
    const e = await makeUser('edith');
    const ws = (await o.client.post('/api/workspaces', { name: 'team' })).json.workspace.id;
    assert.equal((await o.client.post(`/api/workspaces/${ws}/shares`, { user: 'victor', role: 'viewer' })).status, 200);
    const sh = await o.client.post(`/api/workspaces/${ws}/shares`, { user: 'edith', role: 'editor' });
    assert.deepEqual(sh.json.shares.map((s) => [s.name, s.role]).sort(), [['edith', 'editor'], ['victor', 'viewer']]);
    assert.equal((await o.client.post(`/api/workspaces/${ws}/shares`, { user: 'nobody', role: 'viewer' })).json.field, 'user');
    assert.equal((await o.client.post(`/api/workspaces/${ws}/shares`, { user: 'victor', role: 'boss' })).json.field, 'role');

    const vl = (await v.client.get('/api/workspaces')).json.workspaces.find((w) => w.id === ws);
    assert.equal(vl.role, 'viewer');
    assert.ok(!('shares' in vl), 'only the owner sees the share list in the workspace');
    assert.equal((await v.client.upload(ws, pcap('dns.pcap'))).status, 403);
    const up = await e.client.upload(ws, pcap('dns.pcap'));
    assert.equal(up.status, 202, up.text);
    assert.equal((await e.client.waitJob(up.json.job.id)).state, 'done');
    assert.equal((await v.client.get(`/api/workspaces/${ws}/flows`)).status, 200);
    const exp = await v.client.get(`/api/workspaces/${ws}/export?format=csv`);
    assert.equal(exp.status, 200, 'a viewer may export');
    assert.equal((await e.client.req('PATCH', `/api/workspaces/${ws}`, { json: { name: 'mine now' } })).status, 403);

    // A shared link to a filtered view: the API behind it answers only those with access.
    const link = `/api/workspaces/${ws}/flows?limit=5`;
    assert.equal((await v.client.get(link)).status, 200);
    const outsider = await makeUser('oscar');
    assert.equal((await outsider.client.get(link)).status, 404);

    assert.equal((await o.client.req('DELETE', `/api/workspaces/${ws}/shares/${v.id}`)).status, 200);
    assert.equal((await v.client.get(`/api/workspaces/${ws}`)).status, 404, 'unshared');

    const t = await o.client.post(`/api/workspaces/${ws}/transfer`, { user: 'edith' });
    assert.equal(t.status, 200, t.text);
    assert.equal((await e.client.get(`/api/workspaces/${ws}`)).json.workspace.role, 'owner');
    assert.equal((await o.client.get(`/api/workspaces/${ws}`)).json.workspace.role, 'editor');
    assert.equal((await o.client.req('DELETE', `/api/workspaces/${ws}`)).status, 403);
    assert.equal((await e.client.req('DELETE', `/api/workspaces/${ws}`)).status, 200);
    assert.equal((await e.client.get(`/api/workspaces/${ws}`)).status, 404);
    assert.ok(!fs.existsSync(path.join(srv.dataDir, 'workspaces', String(ws))), 'its files are gone');
  });

  test('a workspace past its end of life is deleted automatically', async () => {
    const u = await makeUser('eolga');
    const ws = (await u.client.post('/api/workspaces', { name: 'short-lived' })).json.workspace.id;
    const past = await u.client.req('PATCH', `/api/workspaces/${ws}`, { json: { eol: 1000 } });
    assert.equal(past.status, 400);
    assert.equal(past.json.field, 'eol');
    const eol = Math.floor(Date.now() / 1000) + 2;
    const set = await u.client.req('PATCH', `/api/workspaces/${ws}`, { json: { eol } });
    assert.equal(set.status, 200);
    assert.equal(set.json.workspace.eol, eol);
    assert.equal((await u.client.get(`/api/workspaces/${ws}`)).status, 200);
    await sleep(3200);
    assert.equal((await u.client.get(`/api/workspaces/${ws}`)).status, 404);
    await sleep(1100);
    await u.client.get('/api/workspaces'); // the housekeeping runs with requests
    await sleep(200);
    assert.ok(!fs.existsSync(path.join(srv.dataDir, 'workspaces', String(ws))), 'deleted from disk');
  });

  test('an upload over the owner\'s quota is refused with a clear error', async () => {
    const size = fs.statSync(pcap('dns.pcap')).size;
    const u = await makeUser('quentin', { quota: size });
    const ws = (await u.client.post('/api/workspaces', { name: 'q' })).json.workspace.id;
    const first = await u.client.upload(ws, pcap('dns.pcap'));
    assert.equal(first.status, 202, first.text);
    await u.client.waitJob(first.json.job.id);
    const second = await u.client.upload(ws, pcap('dns.pcap'));
    assert.equal(second.status, 413);
    assert.match(second.json.error, /quota exceeded: the workspace owner may store \d+ bytes, uses \d+, and this upload is \d+ bytes/);
    const url = await u.client.post(`/api/workspaces/${ws}/imports`, { url: 'https://127.0.0.1:9/more.pcap' });
    assert.equal(url.status, 413, 'an owner at the quota cannot import from a URL either');
    assert.equal(url.json.field, 'quota');
    const info = (await admin.get(`/api/users/${u.id}`)).json.user;
    assert.equal(info.used, size);
    assert.equal(info.quota, size);
  });
});

test('the audit log records logins, failures, user and share changes, imports and deletions', async () => {
  const r = await admin.get('/api/audit?limit=1000');
  assert.equal(r.status, 200);
  const entries = r.json.entries;
  const has = (pred, what) => assert.ok(entries.some(pred), `audit: ${what}`);
  has((e) => e.action === 'login' && e.user_name === 'admin' && e.addr === '127.0.0.1', 'login');
  has((e) => e.action === 'login_failed' && e.user_name === 'frank' && e.user === null, 'failed login');
  has((e) => e.action === 'login_locked', 'locked');
  has((e) => e.action === 'admin' && e.target === '/api/users' && e.detail.name === 'alice', 'user created');
  has((e) => e.action === 'admin' && e.detail.method === 'DELETE', 'user deleted');
  has((e) => e.action === 'manage' && /\/shares$/.test(e.target) && e.detail.role === 'editor', 'share');
  has((e) => e.action === 'import' && /\/captures$/.test(e.target), 'import');
  has((e) => e.action === 'export' && /\/export$/.test(e.target) && e.user_name === 'victor', 'export');
  has((e) => e.action === 'manage' && e.detail.method === 'DELETE' && /^\/api\/workspaces\/\d+$/.test(e.target), 'workspace deleted');
  assert.ok(entries.every((e) => typeof e.time === 'number' && 'addr' in e));
  assert.ok(entries[0].id > entries[entries.length - 1].id, 'newest first');
  const page = await admin.get('/api/audit?limit=2');
  assert.equal(page.json.entries.length, 2);
  const next = await admin.get(`/api/audit?limit=2&before=${page.json.next}`);
  assert.ok(next.json.entries[0].id < page.json.entries[1].id + 1);
});

describe('session expiry and the nginx login limit', () => {
  let s2;
  before(async () => {
    s2 = await startServer({ env: { CAPATLAS_SESSION_IDLE: '3', CAPATLAS_SESSION_MAX_AGE: '7' } });
    bag.remember(s2.admin.password);
  });
  after(async () => {
    if (!s2) return;
    await s2.stop({ keepData: true });
    assertNoSecrets(s2, bag);
    fs.rmSync(s2.dataDir, { recursive: true, force: true });
  });

  test('idle and absolute expiry', async () => {
    const idle = s2.client();
    assert.equal((await idle.login()).status, 200);
    bag.rememberClient(idle);
    const busy = s2.client();
    assert.equal((await busy.login()).status, 200);
    bag.rememberClient(busy);
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      assert.equal((await busy.get('/api/me')).status, 200, `active session alive at ${i + 1}s`);
    }
    assert.equal((await idle.get('/api/me')).status, 401, 'idle session expired');
    await sleep(3500);
    assert.equal((await busy.get('/api/me')).status, 401, 'absolute expiry even when active');
  });

  test('nginx limits login attempts per client address', async () => {
    const statuses = [];
    for (let i = 0; i < 16; i++) statuses.push((await s2.client().login('ratelimited', 'wrong-password')).status);
    assert.ok(statuses.includes(429), JSON.stringify(statuses));
    assert.equal(statuses[0], 401);
  });
});
