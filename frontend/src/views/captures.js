// The captures panel of a workspace: uploads (several files, drag-and-drop) with upload and import
// progress, and the captures table with size, packets, flows, time span, state and import report.
import { h, replace, fmtInt, fmtBytes, text } from '../dom.js';
import { get, post, api, uploadCapture } from '../api.js';
import { nsToIso } from '../filter/lang.js';

const PENDING = new Set(['queued', 'importing']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const uploads = { active: 0 };

/** Text summary of an import report: skipped packets by reason, non-IP, tunnels, damage. */
export function reportLines(r) {
  if (!r || typeof r !== 'object') return [];
  const out = [];
  const sum = (o) => (o && typeof o === 'object' ? Object.values(o).reduce((a, b) => a + (Number(b) || 0), 0) : 0);
  const list = (o) => Object.entries(o || {}).map(([k, v]) => `${k} ${fmtInt(Number(v))}`).join(', ');
  if (r.partial) out.push(`partial: ${r.damage ? `${text(r.damage.reason)} at packet ${fmtInt(r.damage.packet)}, offset ${fmtInt(r.damage.offset)}` : 'the file is damaged'}`);
  if (sum(r.skipped)) out.push(`skipped: ${list(r.skipped)}`);
  if (sum(r.non_ip)) out.push(`non-IP: ${list(r.non_ip)}`);
  if (sum(r.tunnels)) out.push(`tunnels: ${list(r.tunnels)}`);
  if (Array.isArray(r.link_types) && r.link_types.length) out.push(`link: ${r.link_types.map(text).join(', ')}`);
  return out;
}

export function capturesPanel(wsId, base, { isAlive, onChange }) {
  const box = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading captures…'));
  const uploadsList = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const delErr = h('p', { class: 'error', role: 'alert', hidden: true, testid: 'capture-delete-error' });
  let caps = [];
  let lastStates = new Map();
  let timer = null;
  let seq = 0;

  async function load() {
    const my = ++seq;
    clearTimeout(timer);
    try {
      const d = await get(`${base}/captures`);
      if (!isAlive() || my !== seq) return;
      caps = d.captures || [];
      replace(box, table(caps));
      let changed = false;
      const states = new Map();
      for (const c of caps) {
        states.set(c.id, c.state);
        if (lastStates.get(c.id) !== c.state && !PENDING.has(c.state)) changed = true;
      }
      if (lastStates.size !== states.size) changed = true;
      const first = lastStates.size === 0 && states.size === 0;
      lastStates = states;
      if (changed && !first) onChange();
      if (caps.some((c) => PENDING.has(c.state))) timer = setTimeout(load, 2000);
    } catch (e) {
      if (isAlive() && my === seq) replace(box, h('p', { class: 'error', role: 'alert' }, e.message));
    }
  }

  async function del(c) {
    try {
      await api('DELETE', `${base}/captures/${encodeURIComponent(c.id)}`);
      delErr.hidden = true;
      load();
      onChange();
    } catch (e) {
      delErr.textContent = `Cannot delete ${text(c.name)}: ${e.message}`;
      delErr.hidden = false;
    }
  }

  function table(list) {
    const rows = list.map((c) => {
      const r = c.report && typeof c.report === 'object' ? c.report : null;
      const notes = c.state === 'failed' ? [text(c.error) || 'import failed'] : reportLines(r);
      const span = r && r.first_ns != null ? `${nsToIso(r.first_ns).replace('T', ' ')} → ${nsToIso(r.last_ns).replace('T', ' ')}` : '';
      let armed = false;
      const delBtn = h('button', {
        type: 'button', class: 'secondary small', testid: 'capture-delete', 'aria-label': `Delete ${text(c.name)}`,
        onClick: () => {
          if (!armed) {
            armed = true;
            delBtn.textContent = 'Confirm delete';
            setTimeout(() => { armed = false; delBtn.textContent = 'Delete'; }, 4000);
            return;
          }
          del(c);
        },
      }, 'Delete');
      return h('tr', { testid: 'capture-row' },
        h('td', { class: 'name' }, text(c.name)),
        h('td', { class: 'num', title: `${fmtInt(c.size)} bytes` }, fmtBytes(c.size)),
        h('td', null, h('span', { class: `badge state-${c.state}` }, text(c.state))),
        h('td', { class: 'num' }, r ? fmtInt(r.packets) : ''),
        h('td', { class: 'num' }, r ? fmtInt(r.flows) : ''),
        h('td', { class: 'time' }, span),
        h('td', { class: c.state === 'failed' ? 'error' : 'muted' }, notes.map((n) => h('div', null, n))),
        h('td', null, delBtn));
    });
    if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No captures yet.')));
    return h('table', { testid: 'captures-table' },
      h('thead', null, h('tr', null,
        ['Name', 'Size', 'State', 'Packets', 'Flows', 'Time span (UTC)', 'Import report', ''].map((l, i) =>
          h('th', { scope: 'col', class: i === 1 || i === 3 || i === 4 ? 'num' : null }, l)))),
      h('tbody', null, rows));
  }

  let queue = Promise.resolve();
  function addFiles(files) {
    for (const file of files) {
      const item = uploadItem(file);
      uploadsList.prepend(item.node);
      queue = queue.then(() => runUpload(file, item));
    }
  }

  async function runUpload(file, item) {
    uploads.active++;
    let answer;
    try {
      answer = await uploadCapture(wsId, file, (loaded, total) => item.progress(loaded, total)).promise;
    } catch (e) {
      item.fail(e.message);
      return;
    } finally {
      uploads.active--;
    }
    if (isAlive()) load();
    const jobId = answer.job && answer.job.id;
    if (jobId === undefined || jobId === null) {
      item.fail('the server did not say which job imports this capture');
      return;
    }
    item.job(answer.job);
    watchJob(jobId, item);
  }

  async function watchJob(jobId, item) {
    let failures = 0;
    let lastState = null;
    while (isAlive()) {
      let job;
      try {
        job = (await get(`/api/jobs/${encodeURIComponent(jobId)}`)).job;
        failures = 0;
      } catch (e) {
        if (!isAlive() || e.status === 401) return;
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
        load();
      }
      if (job.state === 'done' || job.state === 'failed' || job.state === 'canceled') return;
      await sleep(500);
    }
  }

  const fileIn = h('input', {
    id: 'upload-input', type: 'file', multiple: true, testid: 'upload-input',
    onChange: () => { addFiles([...fileIn.files]); fileIn.value = ''; },
  });
  const drop = h('div', {
    class: 'dropzone', testid: 'dropzone',
    onDragover: (ev) => { ev.preventDefault(); ev.dataTransfer.dropEffect = 'copy'; drop.classList.add('over'); },
    onDragleave: () => drop.classList.remove('over'),
    onDrop: (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      const files = [...(ev.dataTransfer.files || [])];
      if (files.length) addFiles(files);
    },
  },
  h('label', { for: 'upload-input' }, 'Add captures (pcap, pcapng, several at once): drop files here or choose them'),
  fileIn);

  /* URL / Azure SAS imports (POST /imports), container listing (POST /imports/list, a job whose
     result lists the blobs) and the pick of blobs to import. */
  const urlIn = h('input', { id: 'import-url', type: 'url', class: 'grow-input', testid: 'import-url', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'https://account.blob.core.windows.net/container/capture.cap?sv=…&sig=…' });
  const pwIn = h('input', { id: 'import-password', type: 'password', testid: 'import-password', autocomplete: 'off', placeholder: 'ZIP password (optional)' });
  const urlErr = h('p', { class: 'error', role: 'alert', hidden: true, testid: 'import-url-error' });
  const blobBox = h('div', { testid: 'import-blobs' });
  const showUrlErr = (m) => { urlErr.textContent = m; urlErr.hidden = !m; };
  function jobItems(answer, label) {
    const jobs = answer.jobs || (answer.job ? [answer.job] : []);
    const capsOut = answer.captures || (answer.capture ? [answer.capture] : []);
    jobs.forEach((job, i) => {
      const item = uploadItem({ name: text((capsOut[i] && capsOut[i].name) || label), size: null }, job.id);
      item.progress(1, 1);
      uploadsList.prepend(item.node);
      item.job(job);
      watchJob(job.id, item);
    });
    load();
  }
  async function importUrl(blobs) {
    showUrlErr('');
    const body = { url: urlIn.value.trim() };
    if (pwIn.value) body.password = pwIn.value;
    if (blobs) body.blobs = blobs;
    try {
      jobItems(await post(`${base}/imports`, body), body.url.replace(/\?.*$/, ''));
      replace(blobBox);
    } catch (e) {
      showUrlErr(e.message);
    }
  }
  async function listContainer() {
    showUrlErr('');
    replace(blobBox, h('p', { class: 'muted' }, 'Listing the container…'));
    try {
      let job = (await post(`${base}/imports/list`, { url: urlIn.value.trim() })).job;
      while (isAlive() && job.state !== 'done' && job.state !== 'failed' && job.state !== 'canceled') {
        await sleep(500);
        job = (await get(`/api/jobs/${encodeURIComponent(job.id)}`)).job;
      }
      if (job.state !== 'done') throw new Error(job.error ? text(job.error) : `listing ${job.state}`);
      const blobs = (job.result && job.result.blobs) || [];
      const boxes = blobs.map((b) => {
        const name = typeof b === 'string' ? b : b.name;
        return { name, cb: h('input', { type: 'checkbox', checked: true, 'aria-label': `Import ${text(name)}` }), size: b.size };
      });
      replace(blobBox, blobs.length ? h('div', { class: 'card' },
        h('p', null, `${blobs.length} blobs in ${text(job.result.container || '')}`),
        h('ul', { class: 'blob-list' }, boxes.map((b) => h('li', null, h('label', null, b.cb, ` ${text(b.name)} `, typeof b.size === 'number' ? h('span', { class: 'muted' }, fmtBytes(b.size)) : null)))),
        h('button', { type: 'button', testid: 'import-selected', onClick: () => importUrl(boxes.filter((b) => b.cb.checked).map((b) => b.name)) }, 'Import selected'))
        : h('p', { class: 'muted' }, 'The container is empty.'));
    } catch (e) {
      replace(blobBox);
      showUrlErr(e.message);
    }
  }
  const urlForm = h('form', { class: 'row import-url', onSubmit: (ev) => { ev.preventDefault(); importUrl(null); } },
    h('div', { class: 'field grow' }, h('label', { for: 'import-url' }, 'Import from an HTTPS URL or an Azure Blob SAS link (file or container)'), urlIn),
    h('div', { class: 'field' }, h('label', { for: 'import-password' }, 'ZIP password'), pwIn),
    h('button', { type: 'submit', testid: 'import-url-submit' }, 'Import'),
    h('button', { type: 'button', class: 'secondary', testid: 'import-list', onClick: listContainer }, 'List container'));

  const origin = location.origin;
  const stream = h('details', { class: 'import-more' },
    h('summary', null, 'Import from a URL, an Azure container, or a stream'),
    urlForm, urlErr, blobBox,
    h('p', { class: 'muted' }, 'From a script or a capture in progress, with an API token, stream the capture as the request body:'),
    h('pre', { class: 'cmd', testid: 'stream-instructions' },
      `curl -T capture.pcap -H "Authorization: Bearer $CAPATLAS_TOKEN" \\\n  "${origin}${base}/captures?name=capture.pcap"\n` +
      `tcpdump -i eth0 -w - | curl -T - -H "Authorization: Bearer $CAPATLAS_TOKEN" \\\n  "${origin}${base}/captures?name=live.pcap"`));

  load();
  return {
    node: h('div', null, drop, stream, uploadsList, delErr, box),
    reload: load,
    get captures() { return caps; },
    dispose: () => clearTimeout(timer),
  };
}

function uploadItem(file, jobId = null) {
  const bar = h('progress', { max: 100, value: 0, testid: 'upload-progress', 'aria-label': `Upload of ${file.name}` });
  const pct = h('span', { class: 'pct', testid: 'upload-percent' }, '0%');
  const jobBar = h('progress', { max: 100, value: 0, testid: 'job-progress', 'aria-label': `Import of ${file.name}`, hidden: true });
  const stateEl = h('span', { class: 'badge', testid: 'job-state' }, 'uploading');
  const detail = h('span', { class: 'muted', testid: 'job-detail' });
  const err = h('p', { class: 'error', role: 'alert', testid: 'job-error', hidden: true });
  const node = h('li', { class: 'upload card' },
    h('div', null, h('strong', null, file.name), ' ', h('span', { class: 'muted' }, fmtBytes(file.size)),
      jobId !== null ? h('button', {
        type: 'button', class: 'secondary small', testid: 'job-cancel',
        onClick: async (ev) => {
          ev.target.disabled = true;
          try { await post(`/api/jobs/${encodeURIComponent(jobId)}/cancel`); } catch (e) { fail(e.message); }
        },
      }, 'Cancel') : null),
    h('div', { class: 'bar' }, h('span', { class: 'bar-label' }, 'Upload'), bar, pct),
    h('div', { class: 'bar' }, h('span', { class: 'bar-label' }, 'Import'), stateEl, jobBar, detail),
    err);
  const fail = (msg) => { err.textContent = msg; err.hidden = !msg; };
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
      const cancel = node.querySelector('[data-testid="job-cancel"]');
      if (cancel && !['queued', 'running'].includes(job.state)) cancel.hidden = true;
      if (job.state === 'failed') fail(`Import failed: ${job.error ? text(job.error) : 'no reason given'}`);
    },
    fail(msg) {
      stateEl.textContent = 'failed';
      stateEl.className = 'badge state-failed';
      fail(msg);
    },
  };
}
