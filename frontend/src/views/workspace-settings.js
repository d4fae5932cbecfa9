// #/workspace-settings/<id>: name, description and end of life, sharing (viewer/editor),
// transfer and deletion.  Everyone with access sees who has access; only the owner may change it.
import { h, replace, text } from '../dom.js';
import { api, get } from '../api.js';
import { errorBox, field, form, showError } from './portal-common.js';

function toDateInput(unix) {
  return typeof unix === 'number' ? new Date(unix * 1000).toISOString().slice(0, 10) : '';
}

export function workspaceSettingsView(wsId) {
  let alive = true;
  const heading = h('h1', { tabindex: -1 }, 'Workspace settings');
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const loadErr = errorBox('ws-settings-error');
  const base = `/api/workspaces/${encodeURIComponent(wsId)}`;

  async function load() {
    let ws;
    let shares;
    try {
      ws = (await get(base)).workspace;
      shares = await get(`${base}/shares`);
    } catch (e) {
      showError(loadErr, e.message);
      replace(body);
      return;
    }
    if (!alive) return;
    const owner = ws.role === 'owner';
    const parts = [h('p', null, h('a', { href: `#/w/${encodeURIComponent(ws.id)}` }, '← back to ', text(ws.name)),
      ' · your role: ', h('strong', { testid: 'ws-role' }, text(ws.role)))];

    if (owner) {
      const name = h('input', { id: 'wss-name', value: ws.name, required: true, testid: 'wss-name' });
      const desc = h('input', { id: 'wss-desc', value: ws.description || '', testid: 'wss-desc' });
      const eol = h('input', { id: 'wss-eol', type: 'date', value: toDateInput(ws.eol), testid: 'wss-eol' });
      const err = errorBox('wss-error');
      parts.push(form({ class: 'card', testid: 'wss-form' }, async () => {
        const b = { name: name.value, description: desc.value };
        b.eol = eol.value ? Math.floor(Date.parse(`${eol.value}T00:00:00Z`) / 1000) : null;
        await api('PATCH', base, b);
        load();
      }, err,
      h('h2', null, 'General'),
      h('div', { class: 'row' }, field('wss-name', 'Name', name), field('wss-desc', 'Description', desc),
        field('wss-eol', 'Delete automatically on (UTC, optional)', eol),
        h('button', { type: 'submit', testid: 'wss-save' }, 'Save'))));
    } else if (ws.eol) {
      parts.push(h('p', { class: 'muted' }, `This workspace will be deleted on ${toDateInput(ws.eol)}.`));
    }

    const shareErr = errorBox('share-error');
    const rows = shares.shares.map((s) => h('tr', { testid: 'share-row' },
      h('td', null, text(s.name)), h('td', null, text(s.role)),
      h('td', null, owner ? h('button', { type: 'button', class: 'secondary', testid: 'share-remove', onClick: async () => {
        try {
          await api('DELETE', `${base}/shares/${encodeURIComponent(s.user)}`);
          load();
        } catch (e) { showError(shareErr, e.message); }
      } }, 'Remove') : '')));
    rows.unshift(h('tr', null, h('td', null, text(shares.owner ? shares.owner.name : '')), h('td', null, 'owner'), h('td')));
    const shareSection = [h('h2', null, 'Access'),
      h('table', { testid: 'shares' }, h('thead', null, h('tr', null, h('th', null, 'User'), h('th', null, 'Role'), h('th'))), h('tbody', null, rows)),
      h('p', { class: 'muted' }, 'Viewers read and export; editors also import and delete captures. Links to a filtered view work only for people listed here.')];
    if (owner) {
      const who = h('input', { id: 'share-user', required: true, autocomplete: 'off', testid: 'share-user' });
      const role = h('select', { id: 'share-role', testid: 'share-role' }, h('option', { value: 'viewer' }, 'viewer'), h('option', { value: 'editor' }, 'editor'));
      shareSection.push(form({ class: 'row', testid: 'share-form' }, async () => {
        await api('POST', `${base}/shares`, { user: who.value, role: role.value });
        load();
      }, shareErr, field('share-user', 'User name', who), field('share-role', 'Role', role),
      h('button', { type: 'submit', testid: 'share-submit' }, 'Share')));
    } else {
      shareSection.push(shareErr);
    }
    parts.push(h('section', { class: 'card' }, shareSection));

    if (owner) {
      const to = h('input', { id: 'transfer-user', required: true, autocomplete: 'off', testid: 'transfer-user' });
      const tErr = errorBox('transfer-error');
      parts.push(form({ class: 'card', testid: 'transfer-form' }, async () => {
        if (!window.confirm(`Give this workspace to ${to.value}? You will keep editor access.`)) return;
        await api('POST', `${base}/transfer`, { user: to.value });
        load();
      }, tErr, h('h2', null, 'Transfer ownership'),
      h('div', { class: 'row' }, field('transfer-user', 'New owner (user name)', to), h('button', { type: 'submit', testid: 'transfer-submit' }, 'Transfer'))));
      const dErr = errorBox('delete-error');
      parts.push(h('section', { class: 'card danger-zone' }, h('h2', null, 'Delete'),
        h('p', null, 'Deletes the workspace, its captures and all their flows. This cannot be undone.'),
        h('button', { type: 'button', class: 'danger', testid: 'ws-delete', onClick: async () => {
          if (!window.confirm(`Delete the workspace "${ws.name}" and everything in it?`)) return;
          try {
            await api('DELETE', base);
            location.hash = '#/';
          } catch (e) { showError(dErr, e.message); }
        } }, 'Delete workspace'), dErr));
    }
    replace(body, parts);
  }

  load();
  return {
    node: h('div', { testid: 'ws-settings' }, heading, loadErr, body),
    focus: heading,
    dispose: () => { alive = false; },
  };
}
