// #/account: the signed-in user's password, sessions and API tokens.
import { h, replace, text } from '../dom.js';
import { api, get, post } from '../api.js';
import { errorBox, field, fmtUnix, form, noticeBox, showError } from './portal-common.js';

export function accountView(user) {
  let alive = true;
  const heading = h('h1', { tabindex: -1 }, 'Account: ', text(user.name));

  // Password
  const cur = h('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true, testid: 'pw-current' });
  const nw = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: '10', testid: 'pw-new' });
  const pwErr = errorBox('pw-error');
  const pwOk = noticeBox('pw-ok');
  const pwForm = form({ class: 'card', testid: 'pw-form' }, async () => {
    showError(pwOk, '');
    await post('/api/me/password', { current: cur.value, new: nw.value });
    cur.value = '';
    nw.value = '';
    pwOk.textContent = 'Password changed. Your other sessions were signed out.';
    pwOk.hidden = false;
    loadSessions();
  }, pwErr,
  h('h2', null, 'Change password'),
  h('div', { class: 'row' }, field('pw-current', 'Current password', cur), field('pw-new', 'New password (10+ characters)', nw),
    h('button', { type: 'submit', testid: 'pw-submit' }, 'Change')),
  pwOk);

  // Sessions
  const sessBox = h('div', { class: 'table-wrap' });
  const sessErr = errorBox('sessions-error');
  async function loadSessions() {
    try {
      const d = await get('/api/me/sessions');
      if (!alive) return;
      replace(sessBox, h('table', { testid: 'sessions' },
        h('thead', null, h('tr', null, h('th', null, 'Signed in'), h('th', null, 'Last seen'), h('th', null, 'From'), h('th', null, ''))),
        h('tbody', null, d.sessions.map((s) => h('tr', { testid: 'session-row' },
          h('td', null, fmtUnix(s.created)), h('td', null, fmtUnix(s.last_seen)), h('td', null, text(s.addr)),
          h('td', null, s.current ? h('span', { class: 'muted' }, 'this session')
            : h('button', { type: 'button', class: 'secondary', testid: 'session-revoke', onClick: async () => {
              try {
                await api('DELETE', `/api/me/sessions/${encodeURIComponent(s.id)}`);
                loadSessions();
              } catch (e) { showError(sessErr, e.message); }
            } }, 'Sign out')))))));
    } catch (e) { showError(sessErr, e.message); }
  }

  // Tokens
  const tokBox = h('div', { class: 'table-wrap' });
  const tokErr = errorBox('tokens-error');
  const tokName = h('input', { id: 'tok-name', required: true, autocomplete: 'off', testid: 'token-name' });
  const tokRo = h('input', { id: 'tok-ro', type: 'checkbox', testid: 'token-readonly' });
  const tokDays = h('input', { id: 'tok-days', type: 'number', min: '1', max: '3650', placeholder: 'never', testid: 'token-days' });
  const secretBox = h('div', { class: 'card secret', testid: 'token-secret-box', hidden: true });
  async function loadTokens() {
    try {
      const d = await get('/api/tokens');
      if (!alive) return;
      const rows = d.tokens.map((t) => h('tr', { testid: 'token-row' },
        h('td', null, text(t.name)), h('td', null, t.readonly ? 'read-only' : 'full'),
        h('td', null, fmtUnix(t.created)), h('td', null, t.expires ? fmtUnix(t.expires) : 'never'),
        h('td', null, t.last_used ? fmtUnix(t.last_used) : '—'),
        h('td', null, h('button', { type: 'button', class: 'secondary', testid: 'token-revoke', onClick: async () => {
          try {
            await api('DELETE', `/api/tokens/${encodeURIComponent(t.id)}`);
            loadTokens();
          } catch (e) { showError(tokErr, e.message); }
        } }, 'Revoke'))));
      if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No API tokens.')));
      replace(tokBox, h('table', { testid: 'tokens' },
        h('thead', null, h('tr', null, ['Name', 'Scope', 'Created', 'Expires', 'Last used', ''].map((x) => h('th', null, x)))),
        h('tbody', null, rows)));
    } catch (e) { showError(tokErr, e.message); }
  }
  const tokForm = form({ class: 'row' }, async () => {
    const body = { name: tokName.value, readonly: tokRo.checked };
    const days = parseInt(tokDays.value, 10);
    if (days > 0) body.expires = Math.floor(Date.now() / 1000) + days * 86400;
    const d = await api('POST', '/api/tokens', body);
    tokName.value = '';
    replace(secretBox,
      h('p', null, 'Copy this token now: it is shown only once.'),
      h('code', { testid: 'token-secret' }, d.secret),
      h('p', { class: 'muted' }, 'Use it as: Authorization: Bearer <token>'));
    secretBox.hidden = false;
    loadTokens();
  }, tokErr,
  field('tok-name', 'Name', tokName),
  h('div', { class: 'field' }, h('label', { for: 'tok-ro' }, tokRo, ' read-only')),
  field('tok-days', 'Expires in days', tokDays),
  h('button', { type: 'submit', testid: 'token-create' }, 'Create token'));

  loadSessions();
  loadTokens();
  return {
    node: h('div', { testid: 'account' }, heading, pwForm,
      h('section', { class: 'card' }, h('h2', null, 'Sessions'), sessBox, sessErr),
      h('section', { class: 'card' }, h('h2', null, 'API tokens'), tokBox, tokForm, secretBox)),
    focus: heading,
    dispose: () => { alive = false; },
  };
}
