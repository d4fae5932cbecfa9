// IPs source / IPs destination: the addresses under the filter with flows, bytes and the
// sent/received split. A row (click or Enter) opens the IP detail; a button filters to it.
import { h, replace, fmtInt } from '../dom.js';
import { cond } from '../filter/lang.js';
import { fmtMetric, keyText, dataTable, statusLine, switcher } from './common.js';

export function ipsView(ctx, side) {
  let order = 'flows';
  const status = statusLine(`ips-${side}-status`);
  const box = h('div', { class: 'table-wrap' });
  const more = h('p', { class: 'muted', testid: `ips-${side}-more` });

  async function load() {
    status.loading();
    try {
      const d = await ctx.fetch('aggregate', { by: side, metrics: 'flows,bytes,sent,recv,packets', top: 200, order });
      const rows = d.rows || [];
      const table = dataTable([
        { label: side === 'src' ? 'Source IP' : 'Destination IP', cls: 'addr', get: (r) => keyText(r.key[0]) },
        { label: 'Flows', num: true, get: (r) => fmtInt(r.flows) },
        { label: 'Bytes', num: true, get: (r) => fmtMetric('bytes', r.bytes), title: (r) => `${fmtInt(r.bytes)} bytes` },
        { label: 'Sent', num: true, get: (r) => fmtMetric('sent', r.sent) },
        { label: 'Received', num: true, get: (r) => fmtMetric('recv', r.recv) },
        { label: 'Sent share', num: true, get: (r) => ((r.sent || 0) + (r.recv || 0) ? `${((100 * (r.sent || 0)) / ((r.sent || 0) + (r.recv || 0))).toFixed(0)}%` : '') },
        { label: 'Packets', num: true, get: (r) => fmtInt(r.packets) },
        { label: '', get: (r) => h('button', {
          type: 'button', class: 'secondary small', testid: 'ip-filter', 'aria-label': `Filter ${side} ${keyText(r.key[0])}`,
          onClick: (ev) => { ev.stopPropagation(); ctx.add(cond(side, '==', r.key[0])); },
        }, 'Filter') },
      ], rows, { testid: `ips-${side}`, onActivate: (r) => r.key[0] !== null && ctx.openIp(r.key[0]), caption: side === 'src' ? 'Source IPs' : 'Destination IPs' });
      replace(box, table);
      more.textContent = d.other && d.other.flows ? `${fmtInt(d.other.flows)} more flows from other addresses (top 200 shown; narrow the filter to see them)` : '';
      if (rows.length) status.clear();
      else status.empty();
    } catch (e) {
      if (e.aborted) throw e;
      replace(box);
      status.error(e);
      throw e;
    }
  }
  return {
    node: h('div', null,
      h('div', { class: 'view-head' }, switcher('Order by', [['flows', 'Flows'], ['bytes', 'Bytes'], ['sent', 'Sent'], ['recv', 'Received']], order, (v) => { order = v; load().catch(() => {}); }, `ips-${side}-order`)),
      status.node, box, more),
    load,
  };
}
