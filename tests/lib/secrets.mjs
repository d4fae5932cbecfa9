// Secrets must never reach a log.  Tests record every password, token and
// session id they use with remember(), and assertNoSecrets() greps the
// server's logs (nginx access/error logs and capatlasd's stderr, which the
// harness writes to srv.logFile) for each of them after the run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

export class SecretBag {
  constructor() {
    this.items = new Set();
  }

  remember(...values) {
    for (const v of values) if (typeof v === 'string' && v.length >= 8) this.items.add(v);
  }

  // Session cookie value and CSRF token of a logged-in Client.
  rememberClient(c) {
    if (c.cookie) this.remember(c.cookie.replace(/^[^=]*=/, ''));
    if (c.csrf) this.remember(c.csrf);
  }
}

function logFiles(srv) {
  const files = [srv.logFile];
  const logDir = path.join(srv.dataDir, 'log');
  if (fs.existsSync(logDir)) for (const f of fs.readdirSync(logDir)) files.push(path.join(logDir, f));
  return files.filter((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

export function assertNoSecrets(srv, bag) {
  const files = logFiles(srv);
  assert.ok(files.length >= 2, `expected capatlasd's and nginx's logs, found ${files.join(', ')}`);
  let bytes = 0;
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    bytes += text.length;
    for (const s of bag.items) {
      assert.ok(!text.includes(s), `a secret (${s.slice(0, 4)}…, ${s.length} chars) appears in ${f}`);
    }
  }
  return { files: files.length, bytes, secrets: bag.items.size };
}
