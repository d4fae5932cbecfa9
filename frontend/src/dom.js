// DOM building for capatlas. Everything shown comes from captures and is hostile, so the only
// way to put data on the page is h(), which uses createElement and text nodes: there is no
// innerHTML anywhere in the app, and attributes that could run or style code are refused.

const FORBIDDEN = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

/**
 * h('a', { href: '#/', class: 'x', testid: 'ws-row', onClick: fn }, 'text', child, [more])
 * - on<Event>: function → addEventListener
 * - testid → data-testid
 * - props that are DOM properties with non-string values (value, checked, disabled,
 *   multiple, hidden) are set as properties; everything else with setAttribute.
 * - null/undefined/false attribute values are skipped; children null/false are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (FORBIDDEN.has(k) || /^on/i.test(k) && typeof v !== 'function') {
        throw new Error(`h(): attribute ${k} is not allowed`);
      }
      if (typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v);
      } else if (k === 'class') {
        el.className = String(v);
      } else if (k === 'testid') {
        el.setAttribute('data-testid', String(v));
      } else if (k === 'value' || (typeof v !== 'string' && k in el)) {
        el[k] = v;
      } else if (v === true) {
        el.setAttribute(k, '');
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces all children of el with the given children (text or nodes). */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const nf = new Intl.NumberFormat('en-US');

export function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? nf.format(n) : '';
}

/** 1536 → "1.5 KiB"; exact count goes in a title by the caller. */
export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** "2012-01-01T12:00:00.123456Z" → "2012-01-01 12:00:00.123456" (always UTC). */
export function fmtTime(iso) {
  if (typeof iso !== 'string') return '';
  return iso.replace('T', ' ').replace(/Z$/, '');
}

export function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(3)} s`;
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  if (m < 60) return `${m} m ${rest.toFixed(1)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

/** Any JSON scalar as display text ("" for null). */
export function text(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
