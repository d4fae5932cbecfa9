// The query endpoints of docs/api.md land one by one (issue 4). Until one is on the server it
// answers 404 "no such API endpoint" and the views show that error; Chromium logs each such 404
// as a console error. These helpers find which endpoints are missing, so the browser tests can
// tolerate exactly those 404s (and report them) while still failing on any other console error.

export const QUERY_ENDPOINTS = ['summary', 'aggregate', 'timeline', 'graph', 'values', 'ips', 'export'];

/** Returns the set of query endpoints the server does not route yet (client: logged-in API client). */
export async function pendingEndpoints(client, ws) {
  const paths = {
    summary: 'summary', aggregate: 'aggregate?by=proto', timeline: 'timeline', graph: 'graph',
    values: 'values?field=proto', ips: 'ips/192.0.2.1', export: 'export?format=csv',
  };
  const out = new Set();
  for (const e of QUERY_ENDPOINTS) {
    const r = await client.get(`/api/workspaces/${ws}/${paths[e]}`);
    if (r.status === 404 && r.json && /no such API endpoint/i.test(r.json.error || '')) out.add(e);
  }
  return out;
}

/** The query endpoint a URL calls (…/workspaces/{ws}/<endpoint>…), or null. */
export function endpointOf(url) {
  const m = /\/api\/workspaces\/[^/]+\/([a-z]+)/.exec(url || '');
  return m ? m[1] : null;
}
