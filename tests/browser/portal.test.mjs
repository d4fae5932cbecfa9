// Browser test of the portal screens (issue 5) in Debian's headless Chromium: the admin creates
// a user in #/admin and sees the audit log, creates an API token in #/account (shown once), shares
// a workspace from its settings page; the new user signs in, sees the shared workspace with the
// viewer role, and changes their password.  Any page error or CSP violation fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { launchChromium } from './lib/chromium.mjs';
import { startServer } from '../lib/server.mjs';

let srv;
let browser;
let profile;

before(async () => {
  srv = await startServer({ env: { CAPATLAS_LOGIN_RATE: '6000r/m', CAPATLAS_LOGIN_BURST: '500' } });
  ({ ctx: browser, profile } = await launchChromium({ height: 900 }));
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (srv) await srv.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function signIn(page, user, pw) {
  await page.goto(`${srv.url}/#/`);
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(pw);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor();
}

test('admin, account and workspace settings screens', { timeout: 180_000 }, async () => {
  const page = browser.pages()[0] || (await browser.newPage());
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused/.test(m.text())) problems.push(m.text()); });
  page.on('dialog', (d) => d.accept().catch(() => {}));

  await signIn(page, srv.admin.username, srv.admin.password);
  await page.getByTestId('nav-admin').click();
  await page.getByTestId('users').waitFor();
  await page.getByTestId('new-user-name').fill('wendy');
  await page.getByTestId('new-user-password').fill('wendy-first-password');
  await page.getByTestId('new-user-submit').click();
  await page.locator('[data-testid="user-row"][data-name="wendy"]').waitFor();
  await page.locator('[data-testid="audit-row"]').first().waitFor();
  assert.ok(await page.locator('[data-testid="audit-row"]', { hasText: 'login' }).count() >= 1);
  // A short password is refused with the server's words.
  await page.getByTestId('new-user-name').fill('shorty');
  await page.getByTestId('new-user-password').fill('short');
  await page.getByTestId('new-user-submit').click();
  await page.getByTestId('new-user-error').getByText(/at least 10/).waitFor();

  await page.getByTestId('nav-account').click();
  await page.getByTestId('token-name').fill('ci');
  await page.getByTestId('token-readonly').check();
  await page.getByTestId('token-create').click();
  const secret = (await page.getByTestId('token-secret').textContent()).trim();
  assert.match(secret, /^cat_[0-9a-f]{64}$/);
  await page.getByTestId('token-row').first().waitFor();
  assert.equal(await page.getByTestId('token-row').count(), 1);
  assert.ok(!(await page.getByTestId('tokens').textContent()).includes(secret), 'the list never shows the secret');
  await page.getByTestId('session-row').first().waitFor();

  // A workspace, shared with wendy as viewer from its settings page.
  const c = srv.client();
  await c.login();
  const ws = (await c.post('/api/workspaces', { name: 'team capture' })).json.workspace.id;
  await page.goto(`${srv.url}/#/workspace-settings/${ws}`);
  await page.getByTestId('share-user').fill('wendy');
  await page.getByTestId('share-submit').click();
  await page.locator('[data-testid="share-row"]', { hasText: 'wendy' }).waitFor();
  await page.getByTestId('wss-desc').fill('shared with the team');
  await page.getByTestId('wss-save').click();
  await page.getByTestId('ws-role').getByText('owner').waitFor();
  await page.getByTestId('logout').click();

  await signIn(page, 'wendy', 'wendy-first-password');
  await page.locator('[data-testid="ws-row"]', { hasText: 'team capture' }).getByText('viewer').waitFor();
  assert.equal(await page.getByTestId('nav-admin').count(), 0, 'no admin link for a user');
  await page.locator('[data-testid="ws-row"]', { hasText: 'team capture' }).getByTestId('ws-settings-link').click();
  await page.getByTestId('ws-role').getByText('viewer').waitFor();
  assert.equal(await page.getByTestId('share-form').count(), 0, 'a viewer cannot share');
  assert.equal(await page.getByTestId('ws-delete').count(), 0, 'a viewer cannot delete');
  await page.goto(`${srv.url}/#/account`);
  await page.getByTestId('pw-current').fill('wendy-first-password');
  await page.getByTestId('pw-new').fill('wendy-second-password');
  await page.getByTestId('pw-submit').click();
  await page.getByTestId('pw-ok').waitFor({ state: 'visible' });
  const r = await srv.client().login('wendy', 'wendy-second-password');
  assert.equal(r.status, 200);
  assert.deepEqual(problems, []);
});
