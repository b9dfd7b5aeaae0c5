// api.js: the portal's only way to the server: the documented /api/v1/ routes, with the
// session cookie (sent by the browser) and the session's CSRF token on every change.

let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || 'HTTP ' + status);
    this.status = status;
    this.body = body || {};
  }
}

export function setCsrf(token) {
  csrf = typeof token === 'string' ? token : null;
}

// method, path (under /api/v1/), optional JSON body. Resolves to the parsed JSON (null for
// 204); rejects with ApiError carrying the status and the error body.
export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch('/api/v1/' + path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (r.status !== 204) {
    try {
      data = await r.json();
    } catch (e) {
      data = null;
    }
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// A path segment or query value, encoded.
export const enc = encodeURIComponent;

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
