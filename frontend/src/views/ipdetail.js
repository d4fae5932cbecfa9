// IP detail (a modal dialog): the address as source and as destination, its peers, countries,
// protocols, hours, timeline and passive-DNS names, from GET /ips/{ip} under the current filter.
import { h, replace, fmtInt, text } from '../dom.js';
import { chartCard, axis } from '../charts/ec.js';
import { cond } from '../filter/lang.js';
import { countryName, countryLabel } from '../charts/world.js';
import { fmtMetric, keyText, dataTable, kv } from './common.js';

function named(x) {
  // countries/protocols entries may be {value|name|country|proto, flows, bytes} or [key, flows]
  if (Array.isArray(x)) return { key: x[0], flows: x[1], bytes: x[2] };
  const key = x.value ?? x.name ?? x.country ?? x.proto ?? x.key ?? x.ip ?? null;
  return { key: Array.isArray(key) ? key[0] : key, flows: x.flows, bytes: x.bytes };
}

export function openIpDetail(ctx, ip) {
  document.querySelectorAll('dialog.ip-detail').forEach((d) => { d.close(); d.remove(); });
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const hours = chartCard('Hours (UTC)', { testid: 'ip-hours', height: 180 });
  const tl = chartCard('Timeline', { testid: 'ip-timeline', height: 180 });
  const dlg = h('dialog', {
    class: 'ip-detail card', testid: 'ip-detail', 'aria-label': `IP ${ip}`,
    onClose: () => { hours.dispose(); tl.dispose(); dlg.remove(); },
  },
  h('div', { class: 'chart-head' }, h('h2', { testid: 'ip-detail-title' }, text(ip)),
    h('div', { class: 'tools' },
      h('button', { type: 'button', testid: 'ip-detail-filter', onClick: () => { dlg.close(); ctx.add(cond('ip', '==', ip)); } }, `Filter ip == ${text(ip)}`),
      h('button', { type: 'button', class: 'secondary', testid: 'ip-detail-close', onClick: () => dlg.close() }, 'Close'))),
  body, h('div', { class: 'grid2' }, hours.node, tl.node));
  document.body.append(dlg);
  dlg.showModal();

  (async () => {
    hours.loading();
    tl.loading();
    try {
      const d = await ctx.fetch(`ips/${encodeURIComponent(ip)}`);
      const side = (s) => (s ? `${fmtInt(s.flows)} flows · ${fmtMetric('bytes', s.bytes)} (sent ${fmtMetric('sent', s.sent)}, received ${fmtMetric('recv', s.recv)})` : '–');
      const small = (title, list, tid, label = keyText, onAct) => h('div', null, h('h4', null, title), dataTable([
        { label: title, get: (r) => label(r.key) },
        { label: 'Flows', num: true, get: (r) => fmtInt(r.flows) },
        { label: 'Bytes', num: true, get: (r) => fmtMetric('bytes', r.bytes) },
      ], (list || []).map(named), { testid: tid, onActivate: onAct }));
      replace(body,
        kv([
          ['As source', h('span', { testid: 'ip-as-source' }, side(d.as_source))],
          ['As destination', h('span', { testid: 'ip-as-destination' }, side(d.as_destination))],
          ['Country', countryLabel(d.country)],
          ['ASN', text(d.asn)],
          ['Names (passive DNS)', h('span', { testid: 'ip-names' }, (d.names || []).map(text).join(', ') || 'none')],
        ]),
        h('div', { class: 'grid3' },
          small('Peers', (d.peers || []).map((p) => ({ value: p.ip, flows: p.flows, bytes: p.bytes })), 'ip-peers', keyText, (r) => openIpDetail(ctx, r.key)),
          small('Countries', d.countries, 'ip-countries', countryLabel),
          small('Protocols', d.protocols, 'ip-protocols')));
      const hv = Array.isArray(d.hours) ? d.hours : [];
      hours.set({
        grid: { left: 50, right: 10, top: 10, bottom: 25 },
        xAxis: { type: 'category', data: hv.map((_, i) => String(i)), ...axis() },
        yAxis: { type: 'value', ...axis() },
        tooltip: { trigger: 'axis' },
        series: [{ type: 'bar', data: hv }],
      });
      const bins = (d.timeline && d.timeline.bins) || [];
      if (!bins.length) tl.empty();
      else {
        tl.set({
          grid: { left: 50, right: 10, top: 10, bottom: 25 },
          xAxis: { type: 'time', ...axis() },
          yAxis: { type: 'value', ...axis() },
          tooltip: { trigger: 'axis' },
          series: [{ type: 'bar', name: 'flows', data: bins.map((b) => [Math.floor(b.t / 1e6), b.flows]) }],
        });
      }
    } catch (e) {
      replace(body, h('p', { class: 'error', testid: 'ip-detail-error' }, e.message));
      hours.error(e.message);
      tl.error(e.message);
    }
  })();
  return dlg;
}
