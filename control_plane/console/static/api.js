// The gateway's API, same origin. The credential lives in sessionStorage only: it is sent in the
// Authorization header and never put in a URL.

const KEY = 'tts-console-session';

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

export function saveSession(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); }
export function clearSession() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function toError(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  return new ApiError(response.status, code, message);
}

// fetch with the session's credential (or `token`); JSON in and out unless `raw`.
export async function api(path, { method = 'GET', json, body, token, signal, raw = false } = {}) {
  const headers = {};
  const credential = token ?? session()?.token;
  if (credential) headers.Authorization = `Bearer ${credential}`;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body, signal, credentials: 'omit', cache: 'no-store' });
  if (!response.ok) {
    const error = await toError(response);
    if (response.status === 401 && token === undefined) window.dispatchEvent(new CustomEvent('console:unauthorized'));
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}
