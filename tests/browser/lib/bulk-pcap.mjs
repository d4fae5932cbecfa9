// Writes a synthetic classic pcap with N flows for the views' performance check: TCP handshakes
// to ports 443/80/22/... and DNS queries, from 5,000 private hosts to 50,000 public addresses,
// spread over three days. Checksums are left zero (the flow engine does not need them).
import { openSync, writeSync, closeSync } from 'node:fs';

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const ETH = Buffer.from('0200000000020200000000010800', 'hex');
const PORTS = [443, 443, 443, 80, 80, 22, 25, 3389, 8080, 993, 5222, 1194];

export function writeBulkPcap(file, flows, { seed = 7, t0 = 1704067200, spanSec = 3 * 86400 } = {}) {
  const rnd = rng(seed);
  const fd = openSync(file, 'w');
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  writeSync(fd, gh);
  const dsts = [];
  for (let i = 0; i < 50000; i++) dsts.push([1 + Math.floor(rnd() * 222), Math.floor(rnd() * 256), Math.floor(rnd() * 256), 1 + Math.floor(rnd() * 254)]);
  const chunk = Buffer.alloc(1 << 22);
  let off = 0;
  const flush = () => { writeSync(fd, chunk, 0, off); off = 0; };
  const pkt = (t, src, dst, proto, sp, dp, flags, payload) => {
    const l4len = proto === 6 ? 20 : 8 + payload;
    const caplen = 14 + 20 + l4len;
    if (off + 16 + caplen > chunk.length) flush();
    chunk.writeUInt32LE(Math.floor(t), off);
    chunk.writeUInt32LE(Math.floor((t % 1) * 1e6), off + 4);
    chunk.writeUInt32LE(caplen, off + 8);
    chunk.writeUInt32LE(caplen, off + 12);
    off += 16;
    ETH.copy(chunk, off);
    off += 14;
    chunk.fill(0, off, off + 20 + l4len);
    chunk[off] = 0x45;
    chunk.writeUInt16BE(20 + l4len, off + 2);
    chunk[off + 8] = 64;
    chunk[off + 9] = proto;
    for (let i = 0; i < 4; i++) { chunk[off + 12 + i] = src[i]; chunk[off + 16 + i] = dst[i]; }
    off += 20;
    chunk.writeUInt16BE(sp, off);
    chunk.writeUInt16BE(dp, off + 2);
    if (proto === 6) {
      chunk.writeUInt32BE(1000, off + 4);
      chunk[off + 12] = 0x50;
      chunk[off + 13] = flags;
      chunk.writeUInt16BE(65535, off + 14);
      off += 20;
    } else {
      chunk.writeUInt16BE(8 + payload, off + 4);
      off += 8 + payload;
    }
  };
  for (let f = 0; f < flows; f++) {
    const t = t0 + (f / flows) * spanSec;
    const h = Math.floor(rnd() * 5000);
    const src = [10, 1 + (h >> 8), h & 255, 1 + (f % 3)];
    const dst = dsts[Math.floor(Math.pow(rnd(), 3) * dsts.length)];
    const sp = 1024 + Math.floor(rnd() * 60000);
    if (rnd() < 0.7) {
      const dp = PORTS[Math.floor(rnd() * PORTS.length)];
      pkt(t, src, dst, 6, sp, dp, 0x02, 0);
      pkt(t + 0.01, dst, src, 6, dp, sp, 0x12, 0);
    } else {
      pkt(t, src, [10, 0, 0, 53], 17, sp, 53, 0, 32);
    }
  }
  flush();
  closeSync(fd);
}

if (process.argv[1] && process.argv[1].endsWith('bulk-pcap.mjs')) {
  writeBulkPcap(process.argv[2], Number(process.argv[3] || 1000000));
}
