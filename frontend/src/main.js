// capatlas single-page app: login, the workspaces list, and one workspace (views/workspace.js).
// Hash routing (#/ and #/w/<id>/<view>?f=<filter>) so any static server can host dist/. Every view is built with
// h() from dom.js; data from the API never reaches innerHTML.

import './style.css';
import { h, replace, fmtInt, fmtBytes, text } from './dom.js';
import { get, post, setUnauthorizedHandler, clearSession } from './api.js';
import { workspaceView } from './views/workspace.js';
import { uploads } from './views/captures.js';
import { themeButton } from './theme.js';
import { accountView } from './views/account.js';
import { adminView } from './views/admin.js';
import { workspaceSettingsView } from './views/workspace-settings.js';

const app = document.getElementById('app');
const state = { user: null, notice: null };
let view = null;

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  // #/w/<id>[/<view>][?f=<filter>]
  const m = /^\/w\/([^/?#]+)(?:\/([\w-]+))?\/?(?:\?(.*))?$/.exec(hash);
  if (m) {
    try {
      const q = new URLSearchParams(m[3] || '');
      return { name: 'workspace', id: decodeURIComponent(m[1]), tab: m[2] || 'flows', filter: q.get('f') || '' };
    } catch {
      return { name: 'workspaces' };
    }
  }
  // Portal screens (issue 5): #/account, #/admin, #/workspace-settings/<id>
  if (hash === '/account') return { name: 'account' };
  if (hash === '/admin') return { name: 'admin' };
  const ws = /^\/workspace-settings\/(\d+)$/.exec(hash);
  if (ws) return { name: 'ws-settings', id: ws[1] };
  return { name: 'workspaces' };
}

function portalView(r) {
  if (r.name === 'account') return accountView(state.user);
  if (r.name === 'admin' && state.user.admin) return adminView(state.user);
  if (r.name === 'ws-settings') return workspaceSettingsView(r.id);
  return null;
}

function onHashChange() {
  const r = route();
  // Inside one workspace a new view or filter updates the page in place (no rebuild).
  if (state.user && r.name === 'workspace' && view && view.wsId === r.id && view.update) {
    view.update(r);
    return;
  }
  render();
}

function render() {
  if (view && view.dispose) view.dispose();
  view = null;
  if (!state.user) {
    view = loginView();
    replace(app, h('main', { class: 'login-page' }, view.node));
  } else {
    const r = route();
    view = r.name === 'workspace' ? workspaceView(r.id, r) : portalView(r) || workspacesView();
    replace(app, header(), h('main', { id: 'main' }, view.node));
  }
  if (view.focus) view.focus.focus();
}

function header() {
  return h('header', { class: 'top' },
    h('a', { href: '#/', class: 'brand' }, 'capatlas'),
    h('nav', { 'aria-label': 'Main' }, h('a', { href: '#/' }, 'Workspaces'),
      h('a', { href: '#/account', testid: 'nav-account' }, 'Account'),
      state.user.admin ? h('a', { href: '#/admin', testid: 'nav-admin' }, 'Admin') : null),
    h('div', { class: 'who' },
      themeButton(),
      h('span', { class: 'muted' }, text(state.user.name), state.user.admin ? ' (admin)' : ''),
      h('button', { type: 'button', class: 'secondary', testid: 'logout', onClick: logout }, 'Log out')));
}

async function logout() {
  try {
    await post('/api/logout');
  } catch {
    // The session is gone either way on this side.
  }
  clearSession();
  state.user = null;
  state.notice = null;
  history.replaceState(null, '', '#/');
  render();
}

function errorBox(testid) {
  return h('p', { class: 'error', role: 'alert', testid, hidden: true });
}

function showError(el, msg) {
  el.textContent = msg;
  el.hidden = !msg;
}

/* ---------------------------------------------------------------- login */

function loginView() {
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, testid: 'login-username' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const err = errorBox('login-error');
  const btn = h('button', { type: 'submit', testid: 'login-submit' }, 'Sign in');
  if (state.notice) showError(err, state.notice);

  const form = h('form', {
    class: 'card login',
    onSubmit: async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      showError(err, '');
      try {
        const d = await post('/api/login', { username: user.value, password: pass.value });
        state.user = d.user;
        state.notice = null;
        render();
      } catch (e) {
        showError(err, e.message);
        pass.value = '';
        pass.focus();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h1', null, 'capatlas'),
  h('p', { class: 'muted' }, 'Sign in to explore your captures.'),
  h('label', { for: 'login-username' }, 'Username'), user,
  h('label', { for: 'login-password' }, 'Password'), pass,
  err,
  btn);
  return { node: form, focus: user };
}

/* ----------------------------------------------------------- workspaces */

function workspacesView() {
  let alive = true;
  const heading = h('h1', { tabindex: -1 }, 'Workspaces');
  const listBox = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading…'));
  const nameIn = h('input', { id: 'ws-name', name: 'name', required: true, autocomplete: 'off', testid: 'ws-create-name' });
  const descIn = h('input', { id: 'ws-desc', name: 'description', autocomplete: 'off', testid: 'ws-create-description' });
  const err = errorBox('ws-create-error');
  const btn = h('button', { type: 'submit', testid: 'ws-create-submit' }, 'Create workspace');

  const form = h('form', {
    class: 'card create',
    onSubmit: async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      showError(err, '');
      try {
        const body = { name: nameIn.value };
        if (descIn.value) body.description = descIn.value;
        const d = await post('/api/workspaces', body);
        if (!alive) return;
        location.hash = `#/w/${encodeURIComponent(d.workspace.id)}`;
      } catch (e) {
        if (!alive) return;
        showError(err, e.message);
        (e.field === 'description' ? descIn : nameIn).focus();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h2', null, 'New workspace'),
  h('div', { class: 'row' },
    h('div', { class: 'field' }, h('label', { for: 'ws-name' }, 'Name'), nameIn),
    h('div', { class: 'field grow' }, h('label', { for: 'ws-desc' }, 'Description (optional)'), descIn),
    btn),
  err);

  (async () => {
    try {
      const d = await get('/api/workspaces');
      if (alive) replace(listBox, workspacesTable(d.workspaces || []));
    } catch (e) {
      if (alive) replace(listBox, h('p', { class: 'error', role: 'alert' }, e.message));
    }
  })();

  return {
    node: h('div', null, heading, listBox, form),
    focus: heading,
    dispose: () => { alive = false; },
  };
}

function workspacesTable(list) {
  const rows = list.map((w) => h('tr', { testid: 'ws-row' },
    h('td', null, h('a', { href: `#/w/${encodeURIComponent(w.id)}` }, text(w.name))),
    h('td', null, text(w.description)),
    h('td', { class: 'num' }, fmtInt(w.captures)),
    h('td', { class: 'num', title: `${fmtInt(w.bytes)} bytes` }, fmtBytes(w.bytes)),
    h('td', null, text(w.role || ''), ' · ', h('a', { href: `#/workspace-settings/${encodeURIComponent(w.id)}`, testid: 'ws-settings-link' }, 'Settings'))));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No workspaces yet: create one below.')));
  return h('table', { testid: 'ws-list' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Description'),
      h('th', { scope: 'col', class: 'num' }, 'Captures'), h('th', { scope: 'col', class: 'num' }, 'Size'),
      h('th', { scope: 'col' }, 'Access'))),
    h('tbody', null, rows));
}

/* ----------------------------------------------------------------- boot */

setUnauthorizedHandler(() => {
  if (!state.user) return;
  state.user = null;
  state.notice = 'Your session has ended: please sign in again.';
  render();
});

// A file dropped outside the drop zone must not make the browser leave the app to open it.
window.addEventListener('dragover', (ev) => ev.preventDefault());
window.addEventListener('drop', (ev) => ev.preventDefault());

window.addEventListener('beforeunload', (ev) => {
  if (uploads.active > 0) ev.preventDefault();
});

async function boot() {
  replace(app, h('p', { class: 'muted boot' }, 'Loading…'));
  try {
    const d = await get('/api/me');
    state.user = d.user;
  } catch (e) {
    if (e.status !== 401) state.notice = `Cannot check the session: ${e.message}`;
  }
  render();
  window.addEventListener('hashchange', onHashChange);
}

boot();
