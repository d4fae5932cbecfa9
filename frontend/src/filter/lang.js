// Building and splitting filter-language text (docs/api.md "Queries"): chips are the top-level
// `and` terms of the query; clicks on charts append a condition. The server parses and judges the
// query; this module only quotes values safely and splits on top-level `and` outside quotes/parens.

const BARE = /^[A-Za-z0-9_.:/]+$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A value as it must appear in a query: numbers, IPs, CIDRs and times bare, other text quoted. */
export function quote(v) {
  if (typeof v === 'number') return String(v);
  const s = String(v);
  if (TIME.test(s)) return s;
  if (s !== '' && BARE.test(s) && !/^(and|or|not)$/i.test(s)) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function cond(field, op, value) {
  return `${field} ${op} ${quote(value)}`;
}

/** Splits a query into its top-level `and` terms (strings). A query with a top-level `or` is one term. */
export function terms(q) {
  const s = (q || '').trim();
  if (!s) return [];
  const out = [];
  let depth = 0;
  let inQ = false;
  let start = 0;
  let hasOr = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inQ) {
      if (ch === '\\') i++;
      else if (ch === '"') inQ = false;
      continue;
    }
    if (ch === '"') inQ = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (depth === 0 && /\s/.test(ch)) {
      const m = /^\s+(and|or)\s+/i.exec(s.slice(i));
      if (m) {
        if (m[1].toLowerCase() === 'or') hasOr = true;
        out.push(s.slice(start, i).trim());
        i += m[0].length - 1;
        start = i + 1;
      }
    }
  }
  out.push(s.slice(start).trim());
  if (hasOr) return [s];
  return out.filter(Boolean);
}

/** Appends a condition (kept once) to a query. */
export function addTerm(q, term) {
  const t = terms(q);
  if (t.includes(term)) return t.join(' and ');
  return [...t, term].join(' and ');
}

export function removeTerm(q, index) {
  const t = terms(q);
  t.splice(index, 1);
  return t.join(' and ');
}

/** Nanoseconds since the epoch → the filter's UTC time literal (ms precision). */
export function nsToIso(ns) {
  return new Date(Math.floor(Number(ns) / 1e6)).toISOString().replace(/\.000Z$/, 'Z');
}

export function timeRange(fromMs, toMs) {
  const iso = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
  return `start >= ${iso(fromMs)} and start < ${iso(toMs)}`;
}

/** Field names offered by completion (the flow fields and the aggregate group fields). */
export const FIELDS = [
  'proto', 'l4', 'category', 'host', 'ip', 'src', 'dst', 'port', 'src.port', 'dst.port',
  'country', 'src.country', 'dst.country', 'asn', 'src.asn', 'dst.asn', 'capture', 'vlan',
  'start', 'end', 'hour', 'day', 'weekday', 'duration', 'bytes', 'sent', 'recv',
  'packets', 'sent.packets', 'recv.packets', 'ip.version', 'tcp.state', 'risk',
];

/** Fields whose known values /values can complete. */
export const VALUE_FIELDS = new Set(['proto', 'l4', 'category', 'country', 'src.country', 'dst.country',
  'host', 'ip', 'src', 'dst', 'port', 'dst.port', 'src.port', 'asn', 'src.asn', 'dst.asn', 'capture', 'tcp.state', 'risk']);
