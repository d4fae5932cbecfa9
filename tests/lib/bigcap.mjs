// A big capture made from a small one of the corpus: its records repeated, each round's
// timestamps shifted by the capture's span (at most maxShift seconds), until the file holds
// target bytes.  Rounds past 2^32 seconds wrap, as a 32-bit pcap clock does.  Returns the size.
import assert from 'node:assert/strict';
import fs from 'node:fs';

export function repeatCapture(src, file, target, maxShift = Infinity) {
  assert.equal(src.readUInt32LE(0), 0xa1b2c3d4, 'little-endian microsecond pcap');
  const recs = [];
  let first = null;
  let last = 0;
  for (let off = 24; off + 16 <= src.length; ) {
    const incl = src.readUInt32LE(off + 8);
    const sec = src.readUInt32LE(off);
    if (first === null) first = sec;
    last = sec;
    recs.push(src.subarray(off, off + 16 + incl));
    off += 16 + incl;
  }
  const shift = Math.min(last - first + 1, maxShift);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, src.subarray(0, 24));
  let size = 24;
  for (let round = 0; size < target; round++) {
    const b = Buffer.concat(
      recs.map((r) => {
        const c = Buffer.from(r);
        c.writeUInt32LE((r.readUInt32LE(0) + round * shift) % 2 ** 32, 0);
        return c;
      }),
    );
    fs.writeSync(fd, b);
    size += b.length;
  }
  fs.closeSync(fd);
  return size;
}
