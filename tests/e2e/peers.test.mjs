// The flow engine against real peers, run live in this test on every capture
// of the shared corpus (../shared/pcaps, MANIFEST.tsv):
//
//  1. packets and bytes of the import report == `capinfos -M -c -d` exactly;
//  2. flows and their L7 protocol == Debian's ndpiReader 4.2, run as
//       ndpiReader -i FILE -t -q -v 2 -w OUT
//     (-t: decapsulate the tunnels 4.2 knows -- GTP-U, TZSP, CAPWAP -- as we
//     always do; -v 2 lists every flow in OUT).  Our side runs
//       capatlasd flows --tcp-idle 604800 --udp-idle 604800 FILE
//     because ndpiReader 4.2 reading a file never expires idle flows (its idle
//     scan only runs for live captures), so our default 5 min / 2 min idle
//     splits would count extra flows that are not disagreements about
//     decoding or DPI.  Flows are matched on ndpiReader's key: L4 protocol,
//     address pair, ports (TCP/UDP only; 0 otherwise) and the innermost VLAN
//     tag (ndpiReader overwrites its vlan id with each tag; we store the
//     outermost, so the innermost is read from our encap path).  The figure
//     is flows matched with the same `master.app` protocol divided by the
//     larger of the two flow counts, summed over the corpus; files where
//     ndpiReader reads no flow at all (unsupported link types such as SLL2
//     and NFLOG, files it aborts on) are listed but not in the denominator.
//     Every disagreement is printed with its reason.
//  3. for the plain IPv4/IPv6 TCP/UDP captures (no tunnel, nothing skipped
//     as malformed), per-conversation packets and bytes per direction ==
//     `tshark -q -z conv,tcp -z conv,udp` (tshark 4.0 prints sizes of
//     10 kB and more truncated to kB/MB: those are compared at that
//     precision; rows of one 5-tuple are summed on both sides, since tshark
//     splits some UDP conversations).  The fuzz-* files are deliberately
//     corrupt and not "plain" captures.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';

import { PCAPS, ROOT } from '../lib/server.mjs';

const BIN = process.env.CAPATLAS_BIN || path.join(ROOT, 'build/capatlasd');
const LONG_IDLE = ['--tcp-idle', '604800', '--udp-idle', '604800'];
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-peers-'));
const FILES = fs
  .readFileSync(path.join(PCAPS, 'MANIFEST.tsv'), 'utf8')
  .split('\n')
  .slice(1)
  .filter(Boolean)
  .map((l) => l.split('\t')[0]);

const L4N = { TCP: 6, UDP: 17, ICMP: 1, ICMPV6: 58, IGMP: 2, VRRP: 112, ESP: 50, SCTP: 132, GRE: 47, OSPF: 89, PIM: 103 };

// "[v6]:port" or "v4:port" -> comparable text.  ndpiReader 4.2 compresses
// IPv6 zero groups non-canonically (even twice), so zero groups are dropped.
function endpoint(s, l4) {
  const i = s.lastIndexOf(':');
  let a = s.slice(0, i);
  let p = s.slice(i + 1);
  if (a.startsWith('[')) a = a.slice(1, -1).split(':').filter((g) => g !== '' && !/^0+$/.test(g)).join(':');
  if (l4 !== 6 && l4 !== 17) p = '0';
  return `${a}/${p}`;
}
function flowKey(l4name, a, b, vlan) {
  const n = L4N[l4name] ?? Number(l4name);
  return `${n} ${[endpoint(a, n), endpoint(b, n)].sort().join(' ')} vlan:${vlan}`;
}

// Runs a command; resolves {status, stdout, stderr} whatever the exit status.
function run(cmd, args) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30 }, (err, stdout, stderr) =>
      resolve({ status: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Runs fn over items, n at a time.
async function pool(items, n, fn) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (queue.length) await fn(queue.shift());
    }),
  );
}

// capinfos exits 1 on a damaged file but still prints what it read.
async function capinfos(file) {
  const out = (await run('capinfos', ['-M', '-c', '-d', file])).stdout;
  const packets = Number((/Number of packets:\s+(\d+)/.exec(out) || [])[1] ?? -1);
  const bytes = Number((/Data size:\s+(\d+)/.exec(out) || [])[1] ?? -1);
  return { packets, bytes };
}

async function oursRun(file) {
  const r = await run(BIN, ['flows', '--report', ...LONG_IDLE, file]);
  const flows = [];
  let report = null;
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const j = JSON.parse(line);
    if (j.report) {
      report = j.report;
      continue;
    }
    const l4 = String(j.l4).toUpperCase();
    const tags = [...j.encap.split(/\/(?:ipv4|ipv6)\//)[0].matchAll(/vlan:(\d+)/g)].map((m) => m[1]);
    const inner = tags.length ? tags[tags.length - 1] : 0;
    const fmt = (a, p) => (j.ip_version === 6 ? `[${a}]` : a) + ':' + (p ?? 0);
    flows.push({ key: flowKey(l4, fmt(j.src, j.src_port), fmt(j.dst, j.dst_port), inner), proto: j.proto, j });
  }
  return { status: r.status, stderr: r.stderr, flows, report };
}

async function ndpi(file, i) {
  const out = path.join(TMP, `ndpi-${i}.out`);
  fs.rmSync(out, { force: true });
  const r = await run('ndpiReader', ['-i', file, '-t', '-q', '-v', '2', '-w', out]);
  const flows = [];
  if (fs.existsSync(out)) {
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
      const m = /^\t\d+\t(\S+) (\S+) <?-> (\S+) (?:\[VLAN: (\d+)\])?\[proto: [^/]*\/([^\]]+)\]/.exec(line);
      if (m) flows.push({ key: flowKey(m[1], m[2], m[3], m[4] || 0), proto: m[5], line: line.trim() });
    }
  }
  return { status: r.status, flows };
}

// Under the ASan build (e2e-san) the whole corpus already runs in
// build/san/tests/test_corpus; the peers are compared once, here.
const SAN = /\/san\//.test(BIN);
const DATA = new Map(); // name -> { o, ci, nd }
before(async () => {
  if (SAN) return;
  await pool(FILES.map((n, i) => [n, i]), 3, async ([name, i]) => {
    const file = path.join(PCAPS, name);
    const [o, ci, nd] = await Promise.all([oursRun(file), capinfos(file), ndpi(file, i)]);
    DATA.set(name, { o, ci, nd });
  });
});

const TUNNEL_RE = /\/(vxlan|gre|erspan|geneve|teredo|ipv4\/ipv4|ipv6\/ipv6|ipv4\/ipv6|ipv6\/ipv4)\//;

// Why one of our flows has no ndpiReader counterpart.
function whyOurs(o, f, nd, matchedKeys) {
  const t = TUNNEL_RE.exec(o.j.encap);
  if (t && !/\/(gtp|capwap)\//.test(o.j.encap))
    return `ndpiReader 4.2 -t does not decapsulate ${t[1]}: it reports the outer flow instead`;
  if (o.j.l4 === 'tcp' && matchedKeys.has(o.key))
    return 'TCP port reuse: a new SYN after FIN/RST is a new connection here; ndpiReader keeps one flow per 5-tuple';
  if (nd.flows.some((n) => n.key.replace(/ vlan:\d+$/, '') === o.key.replace(/ vlan:\d+$/, '')))
    return 'same 5-tuple with another VLAN id: ndpiReader takes the last tag it parsed (for tunnels, of the inner frame)';
  if (/\/capwap$|\/udp$/.test(o.j.encap) && /capwap/i.test(o.proto))
    return 'CAPWAP packets without an inner frame (keep-alives): ndpiReader -t drops them';
  if (o.j.src_port === 0 && o.j.dst_port === 0 && /udp|tcp/.test(o.j.l4))
    return 'a non-first IP fragment whose first fragment is not in the capture';
  if (/^(ip:)?\d+$/.test(String(o.j.l4)) || !['tcp', 'udp', 'icmp', 'icmpv6'].includes(o.j.l4))
    return 'IP protocol keyed on the address pair here; ndpiReader parsed the header differently (damaged packet)';
  return `ndpiReader has no such flow (ours: ${o.j.encap}, ${o.j.packets} packets)`;
}

function whyNdpi(n, f, o) {
  const skipped = Object.keys(o.report?.skipped || {}).filter((k) => k !== 'non_ip');
  if (/^(17 .*\/(4789|6081|3544|37008)\b|47 )/.test(n.key)) return 'outer tunnel flow: we decapsulate it and report the inner flows';
  if (o.flows.some((x) => x.key.replace(/ vlan:\d+$/, '') === n.key.replace(/ vlan:\d+$/, '')))
    return 'same 5-tuple with another VLAN id (see above)';
  if (skipped.length) return `packets we count as ${skipped.join(', ')} in the import report; ndpiReader took them`;
  if (o.report?.partial) return 'file damaged: ndpiReader built a flow from the damaged record we stop at';
  return 'we have no such flow';
}

test('packets and bytes equal capinfos on every capture; flows and L7 agree with ndpiReader 4.2', { skip: SAN && 'ASan build: see test_corpus' }, () => {
  let sumMax = 0;
  let sumAgree = 0;
  let sumOurs = 0;
  let sumNdpi = 0;
  let protoMin = 0;
  let unreadable = 0;
  const lines = [];
  const capMismatch = [];
  for (const name of FILES) {
    const { o, ci, nd } = DATA.get(name);
    const got = { packets: o.report?.packets ?? -1, bytes: o.report?.bytes ?? -1 };
    if (got.packets !== ci.packets || got.bytes !== ci.bytes)
      capMismatch.push(`${name}: ours ${got.packets} packets/${got.bytes} bytes, capinfos ${ci.packets}/${ci.bytes} ${o.stderr.trim()}`);
    if (nd.flows.length === 0 && o.flows.length > 0) {
      unreadable += o.flows.length;
      const lt = (o.report?.link_types || []).join(',');
      lines.push(`${name}: ${o.flows.length} flows, ndpiReader none (exit ${nd.status}; link type ${lt}${/SLL2|NFLOG/.test(lt) ? ' unsupported by ndpiReader' : ''}) -- not compared`);
      continue;
    }
    const pool = new Map();
    for (const n of nd.flows) {
      if (!pool.has(n.key)) pool.set(n.key, []);
      pool.get(n.key).push(n);
    }
    const matchedKeys = new Set();
    const notes = [];
    let agree = 0;
    const unmatched = [];
    for (const x of o.flows) {
      const l = pool.get(x.key);
      if (l && l.length) {
        const n = l.shift();
        matchedKeys.add(x.key);
        if (n.proto === x.proto) agree++;
        else notes.push(`  L7 differs ${x.key}: ours ${x.proto}, ndpiReader ${n.proto}`);
      } else unmatched.push(x);
    }
    for (const x of unmatched) notes.push(`  only ours  ${x.key} ${x.proto}: ${whyOurs(x, name, nd, matchedKeys)}`);
    for (const n of [...pool.values()].flat()) notes.push(`  only nDPI  ${n.key} ${n.proto}: ${whyNdpi(n, name, o)}`);
    // per-protocol flow counts
    const cnt = (arr) => arr.reduce((m, x) => m.set(x.proto, (m.get(x.proto) || 0) + 1), new Map());
    const co = cnt(o.flows);
    const cn = cnt(nd.flows);
    for (const [p, c] of co) protoMin += Math.min(c, cn.get(p) || 0);
    sumMax += Math.max(o.flows.length, nd.flows.length);
    sumAgree += agree;
    sumOurs += o.flows.length;
    sumNdpi += nd.flows.length;
    if (notes.length) lines.push(`${name}: ours ${o.flows.length}, ndpiReader ${nd.flows.length}, agree ${agree}`, ...notes);
  }
  const pct = (100 * sumAgree) / sumMax;
  const ppct = (100 * protoMin) / sumMax;
  console.log(`# ndpiReader comparison over ${FILES.length} captures: ours ${sumOurs} flows, ndpiReader ${sumNdpi}`);
  console.log(`# flows matched with the same L7: ${sumAgree} of ${sumMax} = ${pct.toFixed(2)}%`);
  console.log(`# per-L7 flow counts agree for ${protoMin} of ${sumMax} = ${ppct.toFixed(2)}%`);
  console.log(`# ${unreadable} of our flows are in files ndpiReader reads no flow from (not compared)`);
  for (const l of lines) console.log(`# ${l}`);
  for (const l of capMismatch) console.log(`# capinfos mismatch: ${l}`);
  assert.deepEqual(capMismatch, [], 'packets/bytes must equal capinfos');
  assert.ok(pct >= 98, `flow/L7 agreement ${pct.toFixed(2)}% < 98%`);
  assert.ok(ppct >= 98, `per-L7 count agreement ${ppct.toFixed(2)}% < 98%`);
});

// tshark conv: "A:pa <-> B:pb  f<- b<- f-> b-> ftot btot start dur"; sizes are "N bytes" or "N kB"/"N MB".
function tshark(file) {
  return new Promise((resolve, reject) => {
    execFile('tshark', ['-n', '-r', file, '-q', '-z', 'conv,tcp', '-z', 'conv,udp'], { encoding: 'utf8', maxBuffer: 1 << 28 }, (err, out) =>
      err ? reject(err) : resolve(out),
    );
  });
}

function tsharkConvs(out) {
  const convs = [];
  let l4 = null;
  const size = '(\\d+) (bytes|kB|MB|GB)';
  const re = new RegExp(`^(\\S+)\\s+<->\\s+(\\S+)\\s+(\\d+) ${size}\\s+(\\d+) ${size}`);
  for (const line of out.split('\n')) {
    if (/^TCP Conversations/.test(line)) l4 = 'tcp';
    if (/^UDP Conversations/.test(line)) l4 = 'udp';
    const m = re.exec(line);
    if (!m) continue;
    // "<-" is B -> A, "->" is A -> B
    convs.push({ l4, a: m[1], b: m[2], ba: [Number(m[3]), Number(m[4]), m[5]], ab: [Number(m[6]), Number(m[7]), m[8]] });
  }
  return convs;
}

// [lo, hi] of a tshark size: "N bytes" is exact; "N kB" is N*1000 .. N*1000+999 (truncated, SI).
function sizeRange(v, unit) {
  const mul = { bytes: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[unit];
  return [v * mul, v * mul + mul - 1];
}

// Files whose semantics differ on purpose, not compared with tshark.
const TSHARK_SKIP = {
  'zeek/ipv6-hbh-routing0.pcap':
    'IPv6 type 0 routing header: we key on the final destination (like Zeek), tshark on the header destination',
};

test('per-conversation packets/bytes equal tshark conv,tcp / conv,udp on plain TCP/UDP captures', { skip: SAN && 'ASan build' }, async () => {
  let convs = 0;
  const bad = [];
  const picked = [];
  for (const name of FILES) {
    const { o } = DATA.get(name);
    if (!o.report || o.status !== 0 || o.report.partial || /^fuzz-|\/fuzz-/.test(name)) continue;
    const skipped = Object.keys(o.report.skipped || {}).filter((k) => k !== 'non_ip');
    const plain = o.flows.every((x) => /^(eth|raw|null|sll|loop)[a-z0-9]*(\/vlan:\d+)*\/(ipv4|ipv6)\/[a-z0-9:]+$/.test(x.j.encap));
    const fragments = o.report.fragments_joined > 0 || o.report.fragments_reassembled > 0;
    if (!plain || skipped.length || fragments || Object.keys(o.report.tunnels || {}).length) continue;
    if (TSHARK_SKIP[name]) {
      console.log(`# ${name}: not compared with tshark: ${TSHARK_SKIP[name]}`);
      continue;
    }
    picked.push(name);
  }
  // tshark takes seconds to start: one run over the picked files concatenated
  // (mergecap -a keeps each file's interfaces); conversations of the same
  // 5-tuple in several files are summed on both sides.
  const merged = path.join(TMP, 'plain.pcapng');
  const mc = await run('mergecap', ['-a', '-F', 'pcapng', '-w', merged, ...picked.map((n) => path.join(PCAPS, n))]);
  assert.equal(mc.status, 0, mc.stderr);
  const key = (l4, a, b) => (a < b ? [`${l4} ${a} ${b}`, false] : [`${l4} ${b} ${a}`, true]);
  const get = (m, k) => m.get(k) || m.set(k, { p: [0, 0], lo: [0, 0], hi: [0, 0], files: new Set() }).get(k);
  const mine = new Map();
  for (const name of picked) {
    const { o } = DATA.get(name);
    for (const x of o.flows) {
      if (x.j.l4 !== 'tcp' && x.j.l4 !== 'udp') continue;
      const fmt = (a, p) => (x.j.ip_version === 6 ? `[${a}]` : a) + ':' + p;
      const [k, swap] = key(x.j.l4, fmt(x.j.src, x.j.src_port), fmt(x.j.dst, x.j.dst_port));
      const e = get(mine, k);
      const d0 = swap ? 1 : 0;
      e.files.add(name);
      e.p[d0] += x.j.sent_packets;
      e.lo[d0] += x.j.sent_bytes;
      e.p[1 - d0] += x.j.recv_packets;
      e.lo[1 - d0] += x.j.recv_bytes;
    }
  }
  const theirs = new Map();
  const norm = (e) => (/^[0-9.]+:\d+$/.test(e) ? e : e.replace(/^(.*):(\d+)$/, '[$1]:$2'));
  for (const c of tsharkConvs(await tshark(merged))) {
    convs++;
    const [k, swap] = key(c.l4, norm(c.a), norm(c.b));
    const e = get(theirs, k);
    const ab = sizeRange(c.ab[1], c.ab[2]);
    const ba = sizeRange(c.ba[1], c.ba[2]);
    const d0 = swap ? 1 : 0;
    e.p[d0] += c.ab[0];
    e.lo[d0] += ab[0];
    e.hi[d0] += ab[1];
    e.p[1 - d0] += c.ba[0];
    e.lo[1 - d0] += ba[0];
    e.hi[1 - d0] += ba[1];
  }
  for (const [k, t] of theirs) {
    const m = mine.get(k);
    mine.delete(k);
    const ok = m && [0, 1].every((d) => m.p[d] === t.p[d] && m.lo[d] >= t.lo[d] && m.lo[d] <= t.hi[d]);
    if (!ok)
      bad.push(`${k}: tshark packets ${t.p} bytes ${t.lo}..${t.hi}; ours ${m ? `packets ${m.p} bytes ${m.lo} (${[...m.files]})` : 'none'}`);
  }
  for (const [k, m] of mine) bad.push(`${k}: ours packets ${m.p} bytes ${m.lo} (${[...m.files]}); tshark none`);
  console.log(`# tshark conversations compared: ${convs} in ${picked.length} plain TCP/UDP captures, ${bad.length} differ`);
  for (const b of bad) console.log(`# ${b}`);
  assert.ok(picked.length >= 20, `only ${picked.length} plain captures`);
  assert.deepEqual(bad, []);
});
