// A coarse check, on every `make test`, that an import costs what it should.
// tests/bench/flow-bench.sh measures speed properly (a 1 GB capture, several
// rounds); this catches a change that makes one way into the import several
// times slower, as a stream read one byte per callback once did (ten times
// the CPU for every stdin, gzip and URL import; only the bench noticed).
//
// gencap writes a 128 MB capture; ndpiReader reads it, and capatlasd imports
// it into a workspace (decode + nDPI + geo + LMDB), once from the file and
// once from stdin.  Each import's CPU time (user + system) must be under half
// of ndpiReader's: on our 2-core VM it is a quarter to a third, so the check
// holds under other load and fails on a slowdown of 1.5-2x or more.  CPU
// times, not wall times: a loaded CI machine stretches the second, not the
// first.  Skipped in the sanitizer run (ASan slows us, not ndpiReader).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { ROOT } from '../lib/server.mjs';

const BIN = process.env.CAPATLAS_BIN || path.join(ROOT, 'build/capatlasd');
const GENCAP = path.join(ROOT, 'build/tests/gencap');
const GEO = path.join(ROOT, 'docker/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
const SANITIZED = BIN.includes(`${path.sep}san${path.sep}`);
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'capatlas-speed-'));

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

// Runs argv (stdin from `input` when given) under bash's `time`; returns its
// CPU seconds (user + system) and exit status.
function cpuTime(argv, input) {
  const script = 'TIMEFORMAT="%3U %3S"; { time "$@" >/dev/null 2>&1 <"$CAPATLAS_IN"; } 2>&1';
  const r = spawnSync('bash', ['-c', script, 'cpu', ...argv], {
    env: { ...process.env, CAPATLAS_IN: input || '/dev/null' },
    encoding: 'utf8',
    timeout: 300000,
  });
  const m = /(\d+\.\d+) (\d+\.\d+)\s*$/.exec(r.stdout || '');
  assert.ok(m, `no time from ${argv.join(' ')}: ${r.stdout} ${r.stderr}`);
  return { cpu: Number(m[1]) + Number(m[2]), status: r.status };
}

test('an import of a 128 MB capture costs under half the CPU of ndpiReader on it, from a file and from stdin', { skip: SANITIZED && 'sanitizer build' }, () => {
  const file = path.join(TMP, 'gencap-128.pcap');
  execFileSync(GENCAP, ['-m', '128', '-o', file], { stdio: 'ignore' });
  const geo = fs.existsSync(GEO) ? ['--geo-db', GEO] : [];
  const ndpi = cpuTime(['ndpiReader', '-i', file, '-q', '-v', '0']);
  assert.equal(ndpi.status, 0, 'ndpiReader failed');
  const runs = [
    ['file', [BIN, 'flows', '--store', path.join(TMP, 'ws-file'), ...geo, file], null],
    ['stdin', [BIN, 'flows', '--store', path.join(TMP, 'ws-stdin'), ...geo, '-'], file],
  ];
  const lines = [`ndpiReader: ${ndpi.cpu.toFixed(2)} s CPU`];
  const slow = [];
  for (const [name, argv, input] of runs) {
    fs.mkdirSync(argv[3], { recursive: true });
    const r = cpuTime(argv, input);
    assert.equal(r.status, 0, `capatlasd flows (${name}) failed`);
    const ratio = ndpi.cpu / r.cpu;
    lines.push(`capatlas from ${name}: ${r.cpu.toFixed(2)} s CPU (ndpiReader's over this: ${ratio.toFixed(2)}, must be >= 2)`);
    if (!(ratio >= 2)) slow.push(name);
  }
  for (const l of lines) console.log(`# ${l}`);
  assert.deepEqual(slow, [], `imports costing more than half of ndpiReader's CPU: ${slow.join(', ')}\n${lines.join('\n')}`);
});
