// A small HTTPS proxy of the project's own, put between capatlas and
// Azurite to make the network misbehave on cue: the first GET of a path
// answers 503 with Retry-After, the second is cut mid-body after cutAfter
// bytes, the rest pass through untouched (Range headers included).  Each
// request is recorded, so a test can check that the download resumed with
// a Range request.
//
//   const px = await startFaultProxy({ upstreamPort: az.port, ca: az.ca, cert, key, cutAfter: 1 << 20 });
//   ... px.url('/devstoreaccount1/c/b?sas') ... px.requests ... await px.stop();
import fs from 'node:fs';
import https from 'node:https';

export async function startFaultProxy({ upstreamPort, ca, cert, key, cutAfter = 1 << 20, retryAfter = 1 }) {
  const requests = [];
  const seen = new Map(); // path -> count
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
    const p = req.url.split('?')[0];
    const n = (seen.get(p) || 0) + 1;
    seen.set(p, n);
    const rec = { method: req.method, path: p, range: req.headers.range || null, n, outcome: '' };
    requests.push(rec);
    if (req.method === 'GET' && n === 1) {
      rec.outcome = '503';
      res.writeHead(503, { 'Retry-After': String(retryAfter), 'Content-Type': 'text/plain', 'Content-Length': 12 });
      res.end('come back...');
      return;
    }
    const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
    const up = https.request(
      { host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers, ca, servername: 'localhost' },
      (ures) => {
        res.writeHead(ures.statusCode, ures.headers);
        if (req.method === 'GET' && n === 2) {
          rec.outcome = 'cut';
          let sent = 0;
          ures.on('data', (chunk) => {
            if (sent >= cutAfter) return;
            const take = Math.min(chunk.length, cutAfter - sent);
            sent += take;
            res.write(chunk.subarray(0, take));
            if (sent >= cutAfter) {
              ures.destroy();
              // Let the bytes go out, then drop the connection without an end.
              setTimeout(() => req.socket.destroy(), 50);
            }
          });
          return;
        }
        rec.outcome = String(ures.statusCode);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    requests,
    url: (pathAndQuery) => `https://127.0.0.1:${port}${pathAndQuery}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
