// Figures from peer tools, run on the same file in the same test:
// capinfos (Wireshark) for packets and bytes, ndpiReader (nDPI 4.2) for flows.
import { execFileSync } from 'node:child_process';

export function capinfos(file) {
  const out = execFileSync('capinfos', ['-M', '-c', '-d', file], { encoding: 'utf8' });
  const packets = Number(/Number of packets:\s+(\d+)/.exec(out)[1]);
  const bytes = Number(/Data size:\s+(\d+)/.exec(out)[1]);
  return { packets, bytes };
}

export function ndpiFlows(file) {
  const out = execFileSync('ndpiReader', ['-i', file, '-v', '0'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Number(/Unique flows:\s+(\d+)/.exec(out)[1]);
}
