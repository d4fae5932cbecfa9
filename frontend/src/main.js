// capatlas single-page app: login, workspaces, and one workspace's captures, uploads and flows.
// Hash routing (#/ and #/w/<id>) so any static server can host dist/. Every view is built with
// h() from dom.js; data from the API never reaches innerHTML.

import './style.css';
import { h, replace, fmtInt, fmtBytes, fmtTime, fmtDuration, text } from './dom.js';
import { get, post, uploadCapture, setUnauthorizedHandler, clearSession } from './api.js';

const app = document.getElementById('app');
const state = { user: null, notice: null };
let view = null;
let activeUploads = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const m = /^\/w\/([^/?#]+)\/?$/.exec(hash);
  if (m) {
    try {
      return { name: 'workspace', id: decodeURIComponent(m[1]) };
    } catch {
      return { name: 'workspaces' };
    }
  }
  return { name: 'workspaces' };
}

function render() {
  if (view && view.dispose) view.dispose();
  view = null;
  if (!state.user) {
    view = loginView();
    replace(app, h('main', { class: 'login-page' }, view.node));
  } else {
    const r = route();
    view = r.name === 'workspace' ? workspaceView(r.id) : workspacesView();
    replace(app, header(), h('main', { id: 'main' }, view.node));
  }
  if (view.focus) view.focus.focus();
}

function header() {
  return h('header', { class: 'top' },
    h('a', { href: '#/', class: 'brand' }, 'capatlas'),
    h('nav', { 'aria-label': 'Main' }, h('a', { href: '#/' }, 'Workspaces')),
    h('div', { class: 'who' },
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
    h('td', { class: 'num', title: `${fmtInt(w.bytes)} bytes` }, fmtBytes(w.bytes))));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No workspaces yet: create one below.')));
  return h('table', { testid: 'ws-list' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Description'),
      h('th', { scope: 'col', class: 'num' }, 'Captures'), h('th', { scope: 'col', class: 'num' }, 'Size'))),
    h('tbody', null, rows));
}

/* ------------------------------------------------------------ workspace */

const PENDING = new Set(['queued', 'importing']);

function workspaceView(wsId) {
  let alive = true;
  const isAlive = () => alive;
  const base = `/api/workspaces/${encodeURIComponent(wsId)}`;
  const heading = h('h1', { tabindex: -1 }, 'Workspace');
  const desc = h('p', { class: 'muted' });
  const pageErr = h('p', { class: 'error', role: 'alert', hidden: true });
  const capturesBox = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading captures…'));
  const uploadsList = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const flows = flowsPanel(base, isAlive);

  get(base).then((d) => {
    if (!alive) return;
    heading.textContent = text(d.workspace.name);
    desc.textContent = text(d.workspace.description);
    document.title = `${text(d.workspace.name)} · capatlas`;
  }, (e) => {
    if (!alive) return;
    showError(pageErr, e.status === 404 ? 'This workspace does not exist or is not shared with you.' : e.message);
  });

  /* captures: reloaded after each import and every 2 s while one is pending */
  let lastStates = new Map();
  let capTimer = null;
  let capSeq = 0;
  async function loadCaptures() {
    const my = ++capSeq;
    clearTimeout(capTimer);
    try {
      const d = await get(`${base}/captures`);
      if (!alive || my !== capSeq) return;
      const caps = d.captures || [];
      replace(capturesBox, capturesTable(caps));
      let changed = false;
      const states = new Map();
      for (const c of caps) {
        states.set(c.id, c.state);
        if (lastStates.has(c.id) && lastStates.get(c.id) !== c.state && !PENDING.has(c.state)) changed = true;
      }
      lastStates = states;
      if (changed) flows.reload();
      if (caps.some((c) => PENDING.has(c.state))) capTimer = setTimeout(loadCaptures, 2000);
    } catch (e) {
      if (alive && my === capSeq) replace(capturesBox, h('p', { class: 'error', role: 'alert' }, e.message));
    }
  }

  /* uploads: one at a time, each followed by its job until done or failed */
  let queue = Promise.resolve();
  function addFiles(files) {
    for (const file of files) {
      const item = uploadItem(file);
      uploadsList.prepend(item.node);
      queue = queue.then(() => runUpload(file, item));
    }
  }

  async function runUpload(file, item) {
    activeUploads++;
    let answer;
    try {
      answer = await uploadCapture(wsId, file, (loaded, total) => item.progress(loaded, total)).promise;
    } catch (e) {
      item.fail(e.message);
      return;
    } finally {
      activeUploads--;
    }
    if (alive) loadCaptures();
    const jobId = answer.job && answer.job.id;
    if (jobId === undefined || jobId === null) {
      item.fail('the server did not say which job imports this capture');
      return;
    }
    item.job(answer.job);
    watchJob(jobId, item); // not awaited: the next upload starts while this one imports
  }

  async function watchJob(jobId, item) {
    let failures = 0;
    let lastState = null;
    while (alive) {
      let job;
      try {
        job = (await get(`/api/jobs/${encodeURIComponent(jobId)}`)).job;
        failures = 0;
      } catch (e) {
        if (!alive || e.status === 401) return;
        if (e.status === 404 || ++failures >= 5) {
          item.fail(`cannot follow the import: ${e.message}`);
          return;
        }
        await sleep(1000);
        continue;
      }
      item.job(job);
      if (job.state !== lastState) {
        lastState = job.state;
        loadCaptures();
      }
      if (job.state === 'done' || job.state === 'failed') {
        flows.reload();
        return;
      }
      await sleep(500);
    }
  }

  const fileIn = h('input', {
    id: 'upload-input', type: 'file', multiple: true, testid: 'upload-input',
    onChange: () => {
      addFiles([...fileIn.files]);
      fileIn.value = '';
    },
  });
  const drop = h('div', {
    class: 'dropzone',
    onDragover: (ev) => {
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
      drop.classList.add('over');
    },
    onDragleave: () => drop.classList.remove('over'),
    onDrop: (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      const files = [...(ev.dataTransfer.files || [])];
      if (files.length) addFiles(files);
    },
  },
  h('label', { for: 'upload-input' }, 'Add captures (pcap, pcapng): drop files here or choose them'),
  fileIn);

  loadCaptures();
  flows.reload();

  return {
    node: h('div', null,
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← All workspaces')),
      heading, desc, pageErr,
      h('section', { 'aria-labelledby': 'captures-h' },
        h('h2', { id: 'captures-h' }, 'Captures'),
        drop, uploadsList, capturesBox),
      h('section', { 'aria-labelledby': 'flows-h' },
        h('h2', { id: 'flows-h' }, 'Flows'),
        flows.node)),
    focus: heading,
    dispose: () => {
      alive = false;
      clearTimeout(capTimer);
    },
  };
}

function uploadItem(file) {
  const bar = h('progress', { max: 100, value: 0, testid: 'upload-progress', 'aria-label': `Upload of ${file.name}` });
  const pct = h('span', { class: 'pct', testid: 'upload-percent' }, '0%');
  const jobBar = h('progress', { max: 100, value: 0, testid: 'job-progress', 'aria-label': `Import of ${file.name}`, hidden: true });
  const stateEl = h('span', { class: 'badge', testid: 'job-state' }, 'uploading');
  const detail = h('span', { class: 'muted', testid: 'job-detail' });
  const err = errorBox('job-error');
  const node = h('li', { class: 'upload card' },
    h('div', null, h('strong', null, file.name), ' ', h('span', { class: 'muted' }, fmtBytes(file.size))),
    h('div', { class: 'bar' }, h('span', { class: 'bar-label' }, 'Upload'), bar, pct),
    h('div', { class: 'bar' }, h('span', { class: 'bar-label' }, 'Import'), stateEl, jobBar, detail),
    err);
  return {
    node,
    progress(loaded, total) {
      const p = total > 0 ? Math.min(100, Math.floor((loaded / total) * 100)) : 100;
      bar.value = p;
      pct.textContent = `${p}%`;
    },
    job(job) {
      stateEl.textContent = text(job.state);
      stateEl.className = `badge state-${job.state}`;
      const total = job.bytes_total;
      const done = job.bytes_done;
      if (typeof total === 'number' && total > 0 && typeof done === 'number') {
        jobBar.hidden = false;
        jobBar.value = job.state === 'done' ? 100 : Math.min(100, Math.floor((done / total) * 100));
        detail.textContent = `${fmtBytes(done)} / ${fmtBytes(total)}` +
          (typeof job.packets_done === 'number' ? ` · ${fmtInt(job.packets_done)} packets` : '');
      }
      if (job.state === 'failed') showError(err, `Import failed: ${job.error ? text(job.error) : 'no reason given'}`);
    },
    fail(msg) {
      stateEl.textContent = 'failed';
      stateEl.className = 'badge state-failed';
      showError(err, msg);
    },
  };
}

function capturesTable(caps) {
  const rows = caps.map((c) => {
    const r = c.report && typeof c.report === 'object' ? c.report : null;
    let note = '';
    if (c.state === 'failed') note = text(c.error) || 'import failed';
    else if (r && r.partial) note = `partial: ${r.damage && r.damage.reason ? text(r.damage.reason) : 'the file is damaged'}`;
    return h('tr', { testid: 'capture-row' },
      h('td', { class: 'name' }, text(c.name)),
      h('td', { class: 'num', title: `${fmtInt(c.size)} bytes` }, fmtBytes(c.size)),
      h('td', null, h('span', { class: `badge state-${c.state}` }, text(c.state))),
      h('td', { class: 'num' }, r ? fmtInt(r.packets) : ''),
      h('td', { class: 'num' }, r ? fmtInt(r.flows) : ''),
      h('td', { class: c.state === 'failed' ? 'error' : 'muted' }, note));
  });
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No captures yet.')));
  return h('table', { testid: 'captures-table' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col', class: 'num' }, 'Size'),
      h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col', class: 'num' }, 'Packets'),
      h('th', { scope: 'col', class: 'num' }, 'Flows'), h('th', { scope: 'col' }, 'Notes'))),
    h('tbody', null, rows));
}

/* ---------------------------------------------------------------- flows */

const PAGE = 100;
const COLUMNS = [
  { label: 'First (UTC)', cell: (f) => h('td', { class: 'time', title: text(f.first) }, fmtTime(f.first)) },
  { label: 'Src', cell: (f) => h('td', { class: 'addr' }, text(f.src)) },
  { label: 'Src port', num: true, cell: (f) => h('td', { class: 'num' }, text(f.src_port)) },
  { label: 'Dst', cell: (f) => h('td', { class: 'addr' }, text(f.dst)) },
  { label: 'Dst port', num: true, cell: (f) => h('td', { class: 'num' }, text(f.dst_port)) },
  { label: 'L4', cell: (f) => h('td', null, text(f.l4)) },
  { label: 'Proto', cell: (f) => h('td', null, text(f.proto)) },
  { label: 'Host', cell: (f) => h('td', { class: 'host' }, text(f.host)) },
  { label: 'Packets', num: true, cell: (f) => h('td', { class: 'num' }, fmtInt(f.packets)) },
  { label: 'Bytes', num: true, cell: (f) => h('td', { class: 'num', title: `${fmtInt(f.bytes)} bytes` }, fmtBytes(f.bytes)) },
  { label: 'Duration', num: true, cell: (f) => h('td', { class: 'num' }, fmtDuration(f.duration)) },
];

function flowsPanel(base, isAlive) {
  const totalEl = h('span', { testid: 'flows-total' }, '…');
  const range = h('span', { class: 'muted' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const firstBtn = h('button', { type: 'button', class: 'secondary', disabled: true, onClick: () => go(0) }, 'First page');
  const prevBtn = h('button', { type: 'button', class: 'secondary', disabled: true, onClick: () => go(page - 1) }, 'Previous page');
  const nextBtn = h('button', { type: 'button', class: 'secondary', disabled: true, testid: 'flows-next', onClick: () => go(page + 1) }, 'Next page');
  const table = h('table', { class: 'flows', testid: 'flows-table' },
    h('thead', null, h('tr', null, COLUMNS.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
    tbody);

  let cursors = [null]; // cursors[i] is the `after` of page i
  let page = 0;
  let seq = 0;

  async function load() {
    const my = ++seq;
    const after = cursors[page];
    const q = `?limit=${PAGE}${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    try {
      const d = await get(`${base}/flows${q}`);
      if (!isAlive() || my !== seq) return;
      showError(err, '');
      const list = d.flows || [];
      replace(tbody, list.map((f) => h('tr', null, COLUMNS.map((c) => c.cell(f)))));
      if (!list.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No flows yet.')));
      totalEl.textContent = String(d.total ?? list.length);
      const from = page * PAGE + (list.length ? 1 : 0);
      range.textContent = list.length ? `showing ${fmtInt(from)}–${fmtInt(page * PAGE + list.length)}` : '';
      cursors = cursors.slice(0, page + 1);
      if (d.next !== null && d.next !== undefined) cursors.push(d.next);
      nextBtn.disabled = d.next === null || d.next === undefined;
      prevBtn.disabled = firstBtn.disabled = page === 0;
    } catch (e) {
      if (isAlive() && my === seq) showError(err, `Cannot load flows: ${e.message}`);
    }
  }

  function go(p) {
    if (p < 0 || p >= cursors.length) return;
    page = p;
    load();
  }

  return {
    node: h('div', null,
      h('p', { class: 'summary' }, totalEl, ' flows ', range),
      err,
      h('div', { class: 'table-wrap' }, table),
      h('div', { class: 'pager' }, firstBtn, prevBtn, nextBtn)),
    reload: load,
  };
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
  if (activeUploads > 0) ev.preventDefault();
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
  window.addEventListener('hashchange', render);
}

boot();
