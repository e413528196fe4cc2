// The service's API as the page uses it: the token (asked once, kept for this browser session), JSON calls
// with the bearer header, files as blobs, and the Server-Sent Events stream read through fetch(): EventSource
// cannot send the Authorization header, so the stream is parsed here and resumed with Last-Event-ID.

const TOKEN_KEY = 'lightsweep.token';
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

/** Called once per refused request (wrong or missing token): the page asks for the token again. */
export function whenUnauthorized(handler) {
  unauthorized = handler;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token() || ''}`, ...extra };
}

async function send(method, path, { body, signal, accept } = {}) {
  const init = { method, signal, headers: headers(accept ? { Accept: accept } : {}), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    clearToken();
    unauthorized();
  }
  if (!response.ok) {
    let detail = response.statusText;
    if ((response.headers.get('content-type') || '').includes('json')) detail = (await response.json()).detail;
    throw new ApiError(response.status, detail);
  }
  return response;
}

/** The JSON answer of `method path` (body sent as JSON); ApiError with the server's detail otherwise. */
export async function api(method, path, body, options = {}) {
  return (await send(method, path, { ...options, body })).json();
}

export const getJSON = (path, options) => api('GET', path, undefined, options);

/** A file of the API (sent with the token) as a Blob. */
export async function getBlob(path, options = {}) {
  return (await send('GET', path, options)).blob();
}

/** A message for the page: the server's detail (FastAPI's 422 list joined), or the error's own text. */
export function describe(error) {
  if (error instanceof ApiError && Array.isArray(error.detail)) return error.detail.map((d) => d.msg).join(' ');
  return error.message || String(error);
}

/**
 * Follow a Server-Sent Events stream until `finished()` is true when it ends, or `signal` aborts it.
 * Each event goes to onEvent({id, event, data}); a dropped connection is resumed after the server's
 * `retry:` delay with Last-Event-ID, so no event is missed. onStatus says 'live' or 'reconnecting'.
 * Resolves with the last event id seen.
 */
export async function followEvents(path, { onEvent, onStatus = () => {}, finished, signal, lastEventId = null }) {
  let retryMs = 2000;
  for (;;) {
    try {
      const extra = { Accept: 'text/event-stream' };
      if (lastEventId !== null) extra['Last-Event-ID'] = lastEventId;
      const response = await fetch(path, { headers: headers(extra), signal, cache: 'no-store' });
      if (response.status === 401) {
        clearToken();
        unauthorized();
        return lastEventId;
      }
      if (!response.ok) throw new ApiError(response.status, response.statusText);
      onStatus('live');
      const parser = new EventParser((event) => {
        lastEventId = event.id ?? lastEventId;
        onEvent(event);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        if (parser.retryMs !== null) retryMs = parser.retryMs;
      }
      if (finished()) return lastEventId; // the server ends the stream once the job has finished
    } catch (error) {
      if (signal.aborted) return lastEventId;
      if (error instanceof ApiError && error.status === 404) throw error;
    }
    onStatus('reconnecting');
    await new Promise((resolve) => setTimeout(resolve, retryMs));
    if (signal.aborted) return lastEventId;
  }
}

/** The text/event-stream format (HTML Living Standard, "Server-sent events"), fed chunk by chunk. */
class EventParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = '';
    this.data = [];
    this.type = '';
    this.id = null;
    this.retryMs = null;
  }

  push(text) {
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop(); // an incomplete last line waits for the next chunk
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === '') {
      if (this.data.length) this.dispatch({ id: this.id, event: this.type || 'message', data: this.data.join('\n') });
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) return; // a comment: the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}
