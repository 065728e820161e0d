// StreamProxy comparison peer: the same SSE fan-out written the way a Node user would, with
// built-ins only (node:http server, one keep-alive http.Agent, and an https.Agent for https://
// upstreams). GET /stream/<route> fetches the route's upstreams concurrently and streams back, as
// Server-Sent Events in completion order (PRODUCT.md §5), a bounded prefix of each body as its
// bytes arrive. See ../README.md.
//
// Routes: ROUTES is JSON, or the path of a JSON file:
//   {"w1": {"prefix": 50, "upstreams": ["http://127.0.0.1:19501/bytes/1024", ...]}}
// A StreamProxy config file ({"routes": {...}}) works too. NODE_EXTRA_CA_CERTS adds CAs for https.
'use strict';
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');

const DEFAULT_PREFIX = 1024;
const MAX_PREFIX = 1 << 20;
/** As StreamProxy's drainLimit: a known remainder this small is read and dropped so that the
 * connection goes back to the agent; anything larger, or of unknown length, is cut. */
const DRAIN_LIMIT = 64 * 1024;

function parseSize(v) {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+)\s*(B|KiB|KB|MiB|MB)?\s*$/.exec(String(v));
  if (!m) throw new Error(`bad size ${v}`);
  return Number(m[1]) * ({ undefined: 1, B: 1, KiB: 1024, KB: 1000, MiB: 1 << 20, MB: 1e6 })[m[2]];
}

function loadRoutes() {
  let raw = (process.env.ROUTES || '').trim();
  if (!raw) { console.error('ROUTES is not set (JSON, or the path of a JSON file)'); process.exit(2); }
  if (!raw.startsWith('{')) raw = fs.readFileSync(raw, 'utf8');
  let routes = JSON.parse(raw);
  routes = routes.routes || routes;
  const out = new Map();
  for (const [name, r] of Object.entries(routes)) {
    out.set(name, { upstreams: [...r.upstreams], prefix: parseSize(r.prefix ?? DEFAULT_PREFIX) });
  }
  return out;
}

const ROUTES = loadRoutes();
// One shared client, with StreamProxy's default limits as far as the Agent has them: 10
// connections per host, 100 in all, 20 idle kept (per host: the Agent has no process-wide idle
// cap), idle ones closed after 5 s. A request waiting for a socket waits without a limit.
const agentOptions = { keepAlive: true, maxSockets: 10, maxTotalSockets: 100, maxFreeSockets: 20, timeout: 5000 };
const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };

const msSince = (t0) => Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10;

/** Bytes at the end of `buf` that start a UTF-8 sequence not yet complete (0...3). */
function incompleteTail(buf) {
  const n = buf.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = buf[n - back];
    if ((b & 0xc0) === 0x80) continue;  // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

function errorKind(err) {
  const code = err.code || '';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'connect';
  if (code === 'ETIMEDOUT' || code === 'TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'EPIPE') return 'reset';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) return 'tls';
  return 'protocol';
}

/** One upstream: head, chunks of its first `prefix` bytes, then end (or error), each through emit. */
function fetchUpstream(i, url, prefix, t0, emit) {
  let finished = false;
  const finish = (event, data) => { if (!finished) { finished = true; emit(event, data); } };
  let target;
  try { target = new URL(url); } catch (e) { finish('error', { i, url, kind: 'protocol', message: e.message }); return () => {}; }
  const lib = target.protocol === 'https:' ? https : http;
  const req = lib.get(target, { agent: agents[target.protocol] }, (res) => {
    emit('head', { i, status: res.statusCode, contentType: res.headers['content-type'] ?? null, ttfbMs: msSince(t0) });
    const length = /^\d+$/.test(res.headers['content-length'] || '') ? Number(res.headers['content-length']) : null;
    let received = 0, forwarded = 0, pending = Buffer.alloc(0), done = false;
    res.on('data', (data) => {
      if (done) return;  // a drained remainder
      const piece = data.subarray(0, Math.max(0, prefix - received));
      received += data.length;
      let buf = pending.length ? Buffer.concat([pending, piece]) : piece;
      const tail = incompleteTail(buf);
      pending = buf.subarray(buf.length - tail);
      buf = buf.subarray(0, buf.length - tail);
      forwarded += piece.length;
      if (buf.length) emit('chunk', { i, text: buf.toString('utf8') });
      if (received >= prefix) {
        const truncated = received > prefix || length === null || length > prefix;
        if (!truncated) return;
        done = true;
        // A character cut by the prefix limit is not sent.
        finish('end', { i, bytes: forwarded - pending.length, truncated: true, ms: msSince(t0) });
        if (length !== null && length - received <= DRAIN_LIMIT) res.resume(); else res.destroy();
      }
    });
    res.on('end', () => {
      if (done) return;
      done = true;
      if (pending.length) emit('chunk', { i, text: pending.toString('utf8') });
      finish('end', { i, bytes: forwarded, truncated: false, ms: msSince(t0) });
    });
    res.on('aborted', () => finish('error', { i, url, kind: 'reset', message: 'upstream closed mid-body' }));
    res.on('error', (e) => finish('error', { i, url, kind: errorKind(e), message: e.message }));
  });
  req.setTimeout(15000, () => req.destroy(Object.assign(new Error('read timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => finish('error', { i, url, kind: errorKind(e), message: e.message || e.code }));
  return () => { finished = true; req.destroy(); };
}

const frame = (event, id, data) => `event: ${event}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function stream(req, res, name, query) {
  const route = ROUTES.get(name);
  if (!route) return json(res, 404, { error: `unknown route ${name}`, routes: [...ROUTES.keys()].join(',') });
  if (req.headers['last-event-id'] === 'done') { res.writeHead(204); return res.end(); }
  let prefix = route.prefix;
  if (query.has('prefix')) {
    const n = Number(query.get('prefix'));
    if (!Number.isInteger(n) || n < 1 || n > MAX_PREFIX) {
      return json(res, 400, { error: `prefix must be an integer in 1...${MAX_PREFIX}`, parameter: 'prefix' });
    }
    prefix = n;
  }
  const t0 = process.hrtime.bigint();
  const { upstreams } = route;
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
  res.write('retry: 2000\n\n');
  res.write(frame('open', 1, { route: name, prefix, order: 'completion', upstreams: upstreams.map((url, i) => ({ i, url })) }));
  let id = 1, ok = 0, failed = 0;
  const emit = (event, data) => {
    if (res.writableEnded) return;
    id += 1;
    res.write(frame(event, id, data));
    if (event === 'end') ok += 1;
    if (event === 'error') failed += 1;
    if (ok + failed === upstreams.length) res.end(frame('done', 'done', { ok, failed, ms: msSince(t0) }));
  };
  const cancels = upstreams.map((url, i) => fetchUpstream(i, url, prefix, t0, emit));
  // The client went away before done: cancel its upstream transfers.
  res.on('close', () => { if (!res.writableFinished) for (const cancel of cancels) cancel(); });
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://peer');
  const m = /^\/stream\/([^/]+)$/.exec(u.pathname);
  if (req.method === 'GET' && m) return stream(req, res, decodeURIComponent(m[1]), u.searchParams);
  if (req.method === 'GET' && u.pathname === '/healthz') { res.writeHead(200, { 'Content-Type': 'text/plain' }); return res.end('ok'); }
  json(res, 404, { error: 'not found' });
});
server.keepAliveTimeout = 75000;
const port = Number(process.argv[2] || 8080);
server.listen(port, '127.0.0.1');
