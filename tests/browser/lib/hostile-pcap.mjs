// Writes a small classic pcap with one HTTP/1.1 exchange over a complete TCP handshake whose Host
// header (and so the flow's `host`) is an HTML-injection string, plus a DNS answer naming the
// server with the same string. The views must show it as text and run nothing.
import { writeFileSync } from 'node:fs';

function csum(buf) {
  let s = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length & 1) s += buf[buf.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function ipv4(src, dst, proto, payload) {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x4000, 6);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  h.writeUInt16BE(csum(h), 10);
  return Buffer.concat([h, payload]);
}

function l4sum(src, dst, proto, seg) {
  const ph = Buffer.alloc(12);
  Buffer.from(src.split('.').map(Number)).copy(ph, 0);
  Buffer.from(dst.split('.').map(Number)).copy(ph, 4);
  ph[9] = proto;
  ph.writeUInt16BE(seg.length, 10);
  return csum(Buffer.concat([ph, seg]));
}

function tcp(src, dst, sp, dp, seq, ack, flags, data = Buffer.alloc(0)) {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(sp, 0);
  t.writeUInt16BE(dp, 2);
  t.writeUInt32BE(seq >>> 0, 4);
  t.writeUInt32BE(ack >>> 0, 8);
  t[12] = 5 << 4;
  t[13] = flags;
  t.writeUInt16BE(65535, 14);
  const seg = Buffer.concat([t, data]);
  seg.writeUInt16BE(l4sum(src, dst, 6, seg), 16);
  return ipv4(src, dst, 6, seg);
}

function udp(src, dst, sp, dp, data) {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sp, 0);
  u.writeUInt16BE(dp, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const seg = Buffer.concat([u, data]);
  seg.writeUInt16BE(l4sum(src, dst, 17, seg), 6);
  return ipv4(src, dst, 17, seg);
}

function eth(ip) {
  const e = Buffer.from('0200000000020200000000010800', 'hex');
  return Buffer.concat([e, ip]);
}

function dnsName(name) {
  return Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)])), Buffer.from([0])]);
}

export const HOSTILE = '<img src=x onerror=alert(1)>.example.com';

export function writeHostilePcap(file, host = HOSTILE) {
  const C = '192.168.77.10';
  const S = '93.184.216.34';
  const t0 = 1704103200; // 2024-01-01T10:00:00Z
  const pkts = [];
  const q = Buffer.concat([Buffer.from('abcd81800001000100000000', 'hex'), dnsName(host), Buffer.from('00010001', 'hex'),
    Buffer.from('c00c000100010000003c0004', 'hex'), Buffer.from(S.split('.').map(Number))]);
  pkts.push([0, udp('192.168.77.1', C, 53, 40000, q)]);
  const req = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: <script>alert(2)</script>\r\nAccept: */*\r\n\r\n`);
  const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello');
  const cs = 1000;
  const ss = 5000;
  pkts.push([0.1, tcp(C, S, 50000, 80, cs, 0, 0x02)]);
  pkts.push([0.12, tcp(S, C, 80, 50000, ss, cs + 1, 0x12)]);
  pkts.push([0.13, tcp(C, S, 50000, 80, cs + 1, ss + 1, 0x10)]);
  pkts.push([0.14, tcp(C, S, 50000, 80, cs + 1, ss + 1, 0x18, req)]);
  pkts.push([0.2, tcp(S, C, 80, 50000, ss + 1, cs + 1 + req.length, 0x18, res)]);
  pkts.push([0.21, tcp(C, S, 50000, 80, cs + 1 + req.length, ss + 1 + res.length, 0x11)]);
  pkts.push([0.22, tcp(S, C, 80, 50000, ss + 1 + res.length, cs + 2 + req.length, 0x11)]);
  pkts.push([0.23, tcp(C, S, 50000, 80, cs + 2 + req.length, ss + 2 + res.length, 0x10)]);
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  const out = [gh];
  for (const [dt, ip] of pkts) {
    const frame = eth(ip);
    const ph = Buffer.alloc(16);
    const t = t0 + dt;
    ph.writeUInt32LE(Math.floor(t), 0);
    ph.writeUInt32LE(Math.round((t % 1) * 1e6), 4);
    ph.writeUInt32LE(frame.length, 8);
    ph.writeUInt32LE(frame.length, 12);
    out.push(ph, frame);
  }
  writeFileSync(file, Buffer.concat(out));
}
