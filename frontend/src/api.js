// The capatlas API client (docs/api.md). Keeps the CSRF token in memory only, sends it on every
// state-changing request, and turns every failure into an ApiError carrying the server's words.

let csrf = null;
let onUnauthorized = null;

export class ApiError extends Error {
  constructor(status, message, field = null, position = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
    this.position = position; // a bad filter's 0-based column (400 from the query endpoints)
    this.aborted = false; // the caller cancelled it (a newer filter): not an error to show
  }
}

/** Called (once per failing request) when a request other than login gets 401. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function clearSession() {
  csrf = null;
}

function errorFrom(status, data, fallbackText) {
  if (data && typeof data.error === 'string') {
    return new ApiError(status, data.error, data.field ?? null, typeof data.position === 'number' ? data.position : null);
  }
  const detail = fallbackText && fallbackText.length < 200 && !/^\s*</.test(fallbackText) ? `: ${fallbackText.trim()}` : '';
  const words = {
    400: 'bad request', 401: 'authentication required', 403: 'forbidden', 404: 'not found',
    413: 'the file is larger than the server accepts', 429: 'too many requests, try again shortly',
    502: 'the server is not answering (bad gateway)', 503: 'the server is busy or down', 504: 'the server timed out',
  };
  return new ApiError(status, `${words[status] || 'request failed'} (HTTP ${status})${detail}`);
}

function parse(textBody) {
  if (!textBody) return null;
  try {
    return JSON.parse(textBody);
  } catch {
    return null;
  }
}

function remember(data) {
  if (data && typeof data.csrf === 'string') csrf = data.csrf;
}

/** opts.signal: an AbortSignal; a cancelled request rejects with an ApiError whose aborted is true. */
export async function api(method, path, body, opts0 = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts0.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  let textBody;
  try {
    res = await fetch(path, opts);
    textBody = await res.text();
  } catch (e) {
    const err = new ApiError(0, opts.signal && opts.signal.aborted ? 'cancelled' : `cannot reach the server (${e.message})`);
    err.aborted = !!(opts.signal && opts.signal.aborted);
    throw err;
  }
  const data = parse(textBody);
  if (!res.ok) {
    const err = errorFrom(res.status, data, textBody);
    if (res.status === 401 && path !== '/api/login') {
      csrf = null;
      if (onUnauthorized) onUnauthorized(err);
    }
    throw err;
  }
  if (data === null) throw new ApiError(res.status, `the server sent a response that is not JSON (HTTP ${res.status})`);
  remember(data);
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body) => api('POST', path, body);

/**
 * Uploads one File as the raw request body. onProgress(loaded, total) follows the upload.
 * Returns { promise, abort }; promise resolves with the 202 answer ({capture, job}).
 */
export function uploadCapture(wsId, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const url = `/api/workspaces/${encodeURIComponent(wsId)}/captures?name=${encodeURIComponent(file.name)}`;
    xhr.open('POST', url);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (csrf) xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      const data = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        onProgress(file.size, file.size);
        resolve(data);
        return;
      }
      const err = xhr.status >= 200 && xhr.status < 300
        ? new ApiError(xhr.status, 'the server sent a response that is not JSON')
        : errorFrom(xhr.status, data, xhr.responseText);
      if (xhr.status === 401 && onUnauthorized) {
        csrf = null;
        onUnauthorized(err);
      }
      reject(err);
    };
    xhr.onerror = () => reject(new ApiError(0, 'the upload failed: connection lost or refused'));
    xhr.onabort = () => reject(new ApiError(0, 'the upload was cancelled'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
