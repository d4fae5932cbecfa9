// No secret in any log, answer or store: one run through everything that
// handles a password, a session id, a CSRF token or an API token (good and
// bad logins, password change and reset, tokens by header, an import URL
// carrying a signature), then nginx's access and error logs, capatlasd's
// stderr, the audit log and the portal's LMDB file are searched for each.
// (authz_matrix and portal tests run the same log check on their servers.)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertNoSecrets, SecretBag } from '../lib/secrets.mjs';
import { Client, pcap, startServer } from '../lib/server.mjs';

let srv;
const bag = new SecretBag();
const rnd = () => crypto.randomBytes(12).toString('base64url');

before(async () => {
  srv = await startServer({ env: { CAPATLAS_LOGIN_RATE: '6000r/m', CAPATLAS_LOGIN_BURST: '500' } });
  bag.remember(srv.admin.password);
});

after(async () => {
  if (srv) await srv.stop();
});

test('a full run leaves no password, session id, CSRF or API token in logs, answers or the store', async () => {
  const admin = srv.client();
  assert.equal((await admin.login()).status, 200);
  bag.rememberClient(admin);

  const pw = rnd();
  bag.remember(pw);
  const created = await admin.post('/api/users', { name: 'sam', password: pw });
  assert.equal(created.status, 201);
  assert.ok(!created.text.includes(pw));

  const sam = new Client(srv);
  const wrongPw = `wrong-${rnd()}`;
  bag.remember(wrongPw);
  const bad = await sam.login('sam', wrongPw);
  assert.equal(bad.status, 401);
  assert.ok(!bad.text.includes(wrongPw), 'an error message never echoes the password');
  const typo = await sam.login(`sam-${rnd()}`, pw);
  assert.equal(typo.status, 401);
  assert.equal((await sam.login('sam', pw)).status, 200);
  bag.rememberClient(sam);

  const pw2 = rnd();
  bag.remember(pw2);
  const short = await sam.post('/api/me/password', { current: pw, new: 'x' + pw2.slice(0, 3) });
  assert.equal(short.status, 400);
  assert.ok(!short.text.includes(pw), 'validation errors name the field, not the value');
  assert.equal((await sam.post('/api/me/password', { current: pw, new: pw2 })).status, 200);
  const pw3 = rnd();
  bag.remember(pw3);
  assert.equal((await admin.req('PATCH', `/api/users/${created.json.user.id}`, { json: { password: pw3 } })).status, 200);
  assert.equal((await sam.login('sam', pw3)).status, 200);
  bag.rememberClient(sam);

  const tok = await sam.post('/api/tokens', { name: 'script' });
  assert.equal(tok.status, 201);
  bag.remember(tok.json.secret);
  const viaToken = await new Client(srv).req('GET', '/api/workspaces', { headers: { Authorization: `Bearer ${tok.json.secret}` } });
  assert.equal(viaToken.status, 200);
  const ws = (await sam.post('/api/workspaces', { name: 'secrets' })).json.workspace.id;
  const up = await sam.upload(ws, pcap('dns.pcap'));
  assert.equal(up.status, 202);
  await sam.waitJob(up.json.job.id);
  // A signed URL (SAS-style): its signature must not be logged either.
  const sig = crypto.randomBytes(24).toString('base64url');
  bag.remember(sig);
  await new Client(srv).req('POST', `/api/workspaces/${ws}/imports?sig=${sig}`, {
    headers: { Authorization: `Bearer ${tok.json.secret}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: `https://127.0.0.1:9/cap.pcap?sv=2022-11-02&sig=${sig}` }),
  });
  await new Client(srv).req('GET', `/api/workspaces/${ws}/flows?token=${tok.json.secret}&sig=${sig}`);
  assert.equal((await sam.post('/api/logout')).status, 200);

  const audit = await admin.get('/api/audit?limit=1000');
  assert.equal(audit.status, 200);
  for (const s of bag.items) assert.ok(!audit.text.includes(s), 'the audit log holds no secret');

  await new Promise((r) => setTimeout(r, 300));
  const portalDb = path.join(srv.dataDir, 'portal', 'data.mdb');
  const db = fs.readFileSync(portalDb).toString('latin1');
  for (const s of [pw, pw2, pw3, tok.json.secret, srv.admin.password, admin.cookie.split('=')[1]]) {
    assert.ok(!db.includes(s), 'passwords, tokens and session ids are stored hashed only');
  }
  const st = assertNoSecrets(srv, bag);
  assert.ok(st.secrets >= 10, JSON.stringify(st));
});
