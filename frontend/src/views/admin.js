// #/admin (admins only): users (create, disable, reset password, quota, delete) and the audit log.
import { h, replace, text, fmtBytes, fmtInt } from '../dom.js';
import { api, get } from '../api.js';
import { errorBox, field, fmtUnix, form, showError } from './portal-common.js';

const MiB = 1024 * 1024;

export function adminView(me) {
  let alive = true;
  const heading = h('h1', { tabindex: -1 }, 'Administration');
  const usersBox = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading…'));
  const usersErr = errorBox('users-error');

  async function patch(u, body) {
    try {
      await api('PATCH', `/api/users/${encodeURIComponent(u.id)}`, body);
      loadUsers();
    } catch (e) { showError(usersErr, `${u.name}: ${e.message}`); }
  }

  function userRow(u) {
    const pw = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'new password', 'aria-label': `New password for ${u.name}`, testid: 'user-reset-input' });
    const quota = h('input', { type: 'number', min: '0', placeholder: 'none', value: u.quota == null ? '' : String(Math.round(u.quota / MiB)), 'aria-label': `Quota in MiB for ${u.name}`, testid: 'user-quota-input' });
    const self = u.id === me.id;
    return h('tr', { testid: 'user-row', 'data-name': u.name },
      h('td', null, text(u.name)),
      h('td', null, u.admin ? 'admin' : 'user', u.disabled ? ' (disabled)' : ''),
      h('td', null, fmtUnix(u.created)),
      h('td', { class: 'num', title: `${fmtInt(u.used)} bytes` }, fmtBytes(u.used)),
      h('td', null, quota, h('button', { type: 'button', class: 'secondary', testid: 'user-quota', onClick: () => {
        const v = quota.value.trim();
        patch(u, { quota: v === '' ? null : Math.round(Number(v) * MiB) });
      } }, 'Set')),
      h('td', null, pw, h('button', { type: 'button', class: 'secondary', testid: 'user-reset', onClick: () => patch(u, { password: pw.value }) }, 'Reset')),
      h('td', null,
        h('button', { type: 'button', class: 'secondary', disabled: self, testid: 'user-toggle', onClick: () => patch(u, { disabled: !u.disabled }) }, u.disabled ? 'Enable' : 'Disable'),
        ' ',
        h('button', { type: 'button', class: 'danger', disabled: self, testid: 'user-delete', onClick: async () => {
          if (!window.confirm(`Delete ${u.name} and every workspace they own?`)) return;
          try {
            await api('DELETE', `/api/users/${encodeURIComponent(u.id)}`);
            loadUsers();
          } catch (e) { showError(usersErr, e.message); }
        } }, 'Delete')));
  }

  async function loadUsers() {
    try {
      const d = await get('/api/users');
      if (!alive) return;
      replace(usersBox, h('table', { testid: 'users' },
        h('thead', null, h('tr', null, ['Name', 'Role', 'Created', 'Used', 'Quota (MiB)', 'Password', ''].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, d.users.map(userRow))));
    } catch (e) { showError(usersErr, e.message); }
  }

  const nName = h('input', { id: 'nu-name', required: true, autocomplete: 'off', testid: 'new-user-name' });
  const nPw = h('input', { id: 'nu-pw', type: 'password', required: true, autocomplete: 'new-password', testid: 'new-user-password' });
  const nAdmin = h('input', { id: 'nu-admin', type: 'checkbox', testid: 'new-user-admin' });
  const createErr = errorBox('new-user-error');
  const createForm = form({ class: 'card', testid: 'new-user-form' }, async () => {
    await api('POST', '/api/users', { name: nName.value, password: nPw.value, admin: nAdmin.checked });
    nName.value = '';
    nPw.value = '';
    nAdmin.checked = false;
    loadUsers();
  }, createErr,
  h('h2', null, 'New user'),
  h('div', { class: 'row' }, field('nu-name', 'Name', nName), field('nu-pw', 'Password (10+ characters)', nPw),
    h('div', { class: 'field' }, h('label', { for: 'nu-admin' }, nAdmin, ' admin')),
    h('button', { type: 'submit', testid: 'new-user-submit' }, 'Create user')));

  // Audit log, newest first, with "older" paging.
  const auditBody = h('tbody');
  const auditErr = errorBox('audit-error');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, testid: 'audit-more', onClick: () => loadAudit(next) }, 'Older entries');
  let next = null;
  async function loadAudit(before) {
    try {
      const d = await get(`/api/audit?limit=100${before ? `&before=${encodeURIComponent(before)}` : ''}`);
      if (!alive) return;
      if (!before) auditBody.replaceChildren();
      for (const e of d.entries) {
        auditBody.appendChild(h('tr', { testid: 'audit-row' },
          h('td', null, fmtUnix(e.time)), h('td', null, text(e.user_name ?? '')), h('td', null, text(e.addr)),
          h('td', null, text(e.action)), h('td', null, text(e.target)),
          h('td', null, e.detail ? text(JSON.stringify(e.detail)) : '')));
      }
      next = d.next;
      more.hidden = !next;
    } catch (e) { showError(auditErr, e.message); }
  }

  loadUsers();
  loadAudit(null);
  return {
    node: h('div', { testid: 'admin' }, heading,
      h('section', { class: 'card' }, h('h2', null, 'Users'), usersBox, usersErr), createForm,
      h('section', { class: 'card' }, h('h2', null, 'Audit log'),
        h('div', { class: 'table-wrap' }, h('table', { testid: 'audit' },
          h('thead', null, h('tr', null, ['When', 'Who', 'From', 'Action', 'Target', 'Detail'].map((x) => h('th', { scope: 'col' }, x)))),
          auditBody)),
        more, auditErr)),
    focus: heading,
    dispose: () => { alive = false; },
  };
}
