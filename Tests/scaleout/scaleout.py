#!/usr/bin/env python3
"""`make test-scaleout` (issue 14): StreamProxy behind HAProxy on loopback.

Starts the test origin, 3 instances (a, b, c) and HAProxy with deploy/haproxy.cfg and a
certificate made here, then proves the points of the issue's "What it must show", each with
counts, and exits non-zero if any fails:

  1. through HAProxy over HTTP/2 (curl --http2 -N) events arrive as produced, heartbeats pass,
     `done` ends the stream; the harness (stream-proxy bench) through HAProxy sees the same;
  2. one instance SIGKILLed under load (closed loop, 300 streams): only streams on it fail,
     none started after the kill fails, EventSource-like clients that reconnect all get `done`;
  3. a rolling restart of all 3 under the same load: no stream fails;
  4. the page at / in headless Chromium: 10 EventSource streams at once reach `done` over HTTP/2
     through HAProxy; over HTTP/1.1 direct the 7th waits;
  6. a second instance on a served port exits 2 naming it; with --reuse-port a new process takes
     over the port under load and no stream fails.
(5, systemd-analyze verify, is in make test: scripts/test-deploy.sh.)

Run by scripts/test-scaleout.sh, which builds the release binary and provides Selenium.
"""
import csv
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STREAMPROXY_BIN", os.path.join(ROOT, ".build/release/stream-proxy"))
LOAD = 300  # closed-loop streams for the load phases
failures = []
summary = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port):
    """TCP sockets listening on port, from /proc/net/tcp."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":%04X" % port) and fields[3] == "0A":
                n += 1
    return n


def get(port, path, timeout=2):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Cluster:
    def __init__(self, work):
        self.work = work
        self.procs = {}
        self.origin_port = free_port()
        self.ports = {name: free_port() for name in "abc"}
        self.tls_port = free_port()
        self.http_port = free_port()
        self.stats = os.path.join(work, "haproxy.sock")
        self.haproxy_log = os.path.join(work, "haproxy.log")

    def start_origin(self):
        self.spawn("origin", [BIN, "origin", "--listen", "127.0.0.1:%d" % self.origin_port])
        wait_for(lambda: healthy(self.origin_port, "/stats"), "origin up")

    def instance_args(self, name, extra=()):
        o = "http://127.0.0.1:%d" % self.origin_port
        return [BIN, "serve", "--listen", "127.0.0.1:%d" % self.ports[name], "--workers", "1",
                # load: a stream of about 1 s; trickle: 4 KiB over 2 s in 512-byte writes;
                # beat: 2.5 s of silence before the upstream answers; slow: 1.5 s
                "--route", "load=%s/delay/1000" % o,
                "--route", "trickle@4KiB=%s/bytes/4096?rate=2048&chunk=512" % o,
                "--route", "beat=%s/delay/2500" % o,
                "--route", "slow=%s/delay/1500" % o,
                "--heartbeat", "1s", "--max-connections", "2000", "--max-connections-per-host", "2000",
                "--log-level", "warning"] + list(extra)

    def start_instance(self, name, extra=(), key=None):
        key = key or name
        self.spawn(key, self.instance_args(name, extra))
        wait_for(lambda: healthy(self.ports[name], "/healthz"), "instance %s up" % key)
        return self.procs[key]

    def start_haproxy(self):
        env = dict(os.environ, SP_TLS_BIND="127.0.0.1:%d" % self.tls_port, SP_HTTP_BIND="127.0.0.1:%d" % self.http_port,
                   SP_CERT=os.path.join(self.work, "cert.pem"), SP_STATS=self.stats, SP_LOG="stdout", SP_MAXCONN="8000",
                   SP_A="127.0.0.1:%d" % self.ports["a"], SP_B="127.0.0.1:%d" % self.ports["b"],
                   SP_C="127.0.0.1:%d" % self.ports["c"])
        self.spawn("haproxy", ["haproxy", "-db", "-f", os.path.join(ROOT, "deploy/haproxy.cfg")], env=env,
                   log=self.haproxy_log)
        wait_for(lambda: os.path.exists(self.stats) and all(self.server_status(n) == "UP" for n in "abc"),
                 "HAProxy up, every instance UP")

    def spawn(self, key, args, env=None, log=None):
        out = open(log or os.path.join(self.work, key + ".log"), "ab")
        self.procs[key] = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)

    def stop(self, key, sig=signal.SIGTERM, timeout=30):
        p = self.procs.pop(key)
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def stat(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stats)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = list(csv.reader(io.StringIO(data.decode().lstrip("# "))))
        head = rows[0]
        return {(r[0], r[1]): dict(zip(head, r)) for r in rows[1:] if len(r) == len(head)}

    def server_status(self, name):
        try:
            return self.stat()[("stream_proxy", name)]["status"]
        except (OSError, KeyError):
            return None

    def server_streams(self, name):
        return int(self.stat()[("stream_proxy", name)]["scur"])

    def shutdown(self):
        for key in list(self.procs):
            self.stop(key, timeout=15)


def healthy(port, path):
    try:
        return get(port, path, timeout=1)[0] == 200
    except OSError:
        return False


def wait_for(condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit("scaleout: timed out waiting for: " + what)


def bench(url, seconds, concurrency=LOAD, count=None):
    """Starts `stream-proxy bench` (closed loop); .result() waits and returns its JSON report."""
    args = [BIN, "bench", "-c", str(concurrency), "--json", "--timeout", "20s"]
    args += ["-n", str(count)] if count else ["-d", "%ds" % seconds]
    p = subprocess.Popen(args + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    class Run:
        def result(self):
            out, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit("bench failed: " + err.decode())
            r = json.loads(out)
            r["failed"] = r["started"] - r["completed"]
            return r
    return Run()


def describe(r):
    return ("%d started, %d completed, %d failed (%s); first chunk p50 %s ms, done p50 %s ms" % (
        r["started"], r["completed"], r["failed"], ", ".join("%s %d" % kv for kv in r["errors"].items()) or "no errors",
        r["firstChunk"].get("p50Ms", "-"), r["done"].get("p50Ms", "-")))


class EventSourceClients:
    """Threads that each read streams one after another as a browser EventSource would: a
    stream that breaks before `done` is requested again after the `retry:` delay with
    Last-Event-ID set to the last id seen (which starts a fresh fan-out), until it gets `done`."""

    def __init__(self, port, path, clients=30):
        self.port, self.path = port, path
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.done = self.broken = self.recovered = self.reconnects_with_id = 0
        self.unrecovered = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)
        return self

    def run(self):
        broken, last_id = False, None
        while True:
            if self.stop_flag.is_set() and not broken:
                return
            headers = {"Accept": "text/event-stream"}
            if broken and last_id is not None:
                headers["Last-Event-ID"] = last_id
            saw_done, retry = False, 2.0
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                c.request("GET", self.path, headers=headers)
                r = c.getresponse()
                if r.status == 200:
                    while line := r.readline():
                        line = line.rstrip(b"\r\n")
                        if line.startswith(b"id:"):
                            last_id = line[3:].strip().decode()
                        elif line.startswith(b"retry:"):
                            retry = int(line[6:]) / 1000
                        elif line == b"event: done":
                            saw_done = True
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            with self.lock:
                if saw_done:
                    self.done += 1
                    if broken:
                        self.recovered += 1
                        self.reconnects_with_id += "Last-Event-ID" in headers
                elif not broken:
                    self.broken += 1
            if saw_done:
                broken, last_id = False, None
            else:
                broken = True
                time.sleep(retry)
            if broken and self.stop_flag.is_set() and time.monotonic() > self.deadline():
                with self.lock:
                    self.unrecovered += 1
                return

    def deadline(self):
        if not hasattr(self, "_deadline"):
            self._deadline = time.monotonic() + 30
        return self._deadline


HAPROXY_LINE = re.compile(r"\[(\d+/\w+/\d+:\d+:\d+:\d+\.\d+)\] (\S+) (\S+)/(\S+) \S+ (-?\d+) \S+ \S+ \S+ (\S{4}) ")


def haproxy_streams(log_path, since, until):
    """(accepted epoch seconds, server, status, termination state) of each stream HAProxy
    logged as accepted in [since, until), for /stream/ requests."""
    out = []
    with open(log_path, errors="replace") as f:
        for line in f:
            m = HAPROXY_LINE.search(line)
            if not m or "/stream/" not in line:
                continue
            accepted = time.mktime(time.strptime(m.group(1).split(".")[0], "%d/%b/%Y:%H:%M:%S")) + float(
                "0." + m.group(1).split(".")[1])
            if since <= accepted < until:
                out.append((accepted, m.group(4), int(m.group(5)), m.group(6)))
    return out


def failed(entry):
    """A stream HAProxy saw end badly: an error status, or any termination state but `----`
    (its first letter says who ended it: S the server, C the client, P/R/I/K HAProxy)."""
    _, _, status, state = entry
    return status != 200 or state[0] != "-"


def curl_stream(url, *args):
    """Runs curl -N on url; returns (http version, [(seconds since start, line)])."""
    start = time.monotonic()
    p = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "20", "-w", "%{stderr}version %{http_version}\n", *args, url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for raw in p.stdout:
        lines.append((time.monotonic() - start, raw.decode().rstrip("\n")))
    err = p.stderr.read().decode()
    p.wait()
    version = re.search(r"version (\S+)", err)
    return (version.group(1) if version else "?"), lines, p.returncode


def show_one_http2_stream(cl, cacert):
    print("\n1. SSE through HAProxy over HTTP/2", flush=True)
    base = "https://localhost:%d" % cl.tls_port
    version, lines, rc = curl_stream(base + "/stream/trickle", "--http2", "--cacert", cacert)
    events = [(t, l[7:]) for t, l in lines if l.startswith("event: ")]
    chunks = [t for t, e in events if e == "chunk"]
    check(rc == 0 and version == "2", "curl --http2 -N %s/stream/trickle: HTTP/%s, exit %d" % (base, version, rc))
    check(events and events[0][1] == "open" and events[-1][1] == "done",
          "the stream opens with `open` and ends with `done` (%d events)" % len(events))
    check(len(chunks) >= 4 and chunks[0] < 0.8 and chunks[-1] - chunks[0] > 1.0,
          "chunks arrive as the origin trickles them: %d chunk events, first at %.0f ms, last at %.0f ms, done at %.0f ms"
          % (len(chunks), 1000 * chunks[0], 1000 * chunks[-1], 1000 * events[-1][0]) if chunks else "no chunk events")
    check(events[0][0] < 0.25, "`open` arrived %.1f ms after curl started (TLS handshake included)" % (1000 * events[0][0]))
    summary.append("1. curl --http2: HTTP/%s, open after %.1f ms, %d chunks from %.0f to %.0f ms, done at %.0f ms" % (
        version, 1000 * events[0][0], len(chunks), 1000 * chunks[0], 1000 * chunks[-1], 1000 * events[-1][0]))
    version, lines, rc = curl_stream(base + "/stream/beat", "--http2", "--cacert", cacert)
    pings = [t for t, l in lines if l == ": ping"]
    head = next((t for t, l in lines if l == "event: head"), None)
    done = [t for t, l in lines if l == "event: done"]
    check(version == "2" and len(pings) >= 2 and head and all(t < head for t in pings[:2]) and done,
          "heartbeats pass: %d `: ping` before the upstream answered at %.0f ms (heartbeat 1 s), then `done`"
          % (len(pings), 1000 * (head or 0)))
    summary.append("1. curl --http2 /stream/beat: %d pings in the 2.5 s wait, then done" % len(pings))
    r = bench("http://127.0.0.1:%d/stream/trickle" % cl.http_port, 0, concurrency=30, count=150).result()
    check(r["failed"] == 0 and float(r["firstChunk"]["p50Ms"]) < 800 and float(r["done"]["p50Ms"]) > 1500,
          "stream-proxy bench -c 30 -n 150 through HAProxy: " + describe(r))
    summary.append("1. bench -c 30 -n 150 /stream/trickle via HAProxy: " + describe(r))


def kill_one_under_load(cl):
    print("\n2. instance b SIGKILLed under load (closed loop, %d streams)" % LOAD, flush=True)
    clients = EventSourceClients(cl.http_port, "/stream/load").start()
    run = bench("http://127.0.0.1:%d/stream/load" % cl.http_port, 14)
    time.sleep(5)
    started = time.time()
    on_b = cl.server_streams("b")
    killed_at = time.time()
    cl.stop("b", signal.SIGKILL)
    down = wait_for(lambda: (cl.server_status("b") or "").startswith("DOWN"), "b marked down")
    down_after = down - time.monotonic() + time.time() - killed_at
    r = run.result()
    clients.finish()
    ended = time.time()
    logged = haproxy_streams(cl.haproxy_log, started - 30, ended + 1)
    bad = [e for e in logged if failed(e)]
    bad_elsewhere = [e for e in bad if e[1] != "b" or e[0] >= killed_at]
    check(0 < r["failed"] <= on_b, "bench: %s; b carried %d streams when killed" % (describe(r), on_b))
    check(not bad_elsewhere and len(bad) <= on_b,
          "HAProxy's log: %d streams cut, all on b and accepted before the kill; %d on a or c or started later"
          % (len(bad), len(bad_elsewhere)))
    after = [e for e in logged if e[0] >= killed_at]
    after_check = [e for e in after if e[0] >= killed_at + down_after]
    check(after and not any(failed(e) for e in after),
          "streams started after the kill: %d, none failed (%d of them after HAProxy marked b down, %.1f s after the kill)"
          % (len(after), len(after_check), down_after))
    check(clients.broken > 0 and clients.recovered == clients.broken and clients.unrecovered == 0,
          "EventSource-like clients: %d streams broken by the kill, %d reconnected with Last-Event-ID and got `done` "
          "(%d streams done in all)" % (clients.broken, clients.reconnects_with_id, clients.done))
    summary.append("2. kill -9 b under bench -c %d: %d of %d streams failed, b carried %d; HAProxy: %d cut, all on b; "
                   "%d started after the kill, 0 failed; b down after %.1f s; EventSource clients: %d broken, %d reconnected to done"
                   % (LOAD, r["failed"], r["started"], on_b, len(bad), len(after), down_after, clients.broken,
                      clients.recovered))
    cl.start_instance("b")
    wait_for(lambda: cl.server_status("b") == "UP", "b back UP")


def rolling_restart(cl):
    print("\n3. rolling restart of a, b, c under load (closed loop, %d streams)" % LOAD, flush=True)
    clients = EventSourceClients(cl.http_port, "/stream/load").start()
    started = time.time()
    run = bench("http://127.0.0.1:%d/stream/load" % cl.http_port, 30)
    time.sleep(3)
    drains = []
    for name in "abc":
        t = time.monotonic()
        status = cl.stop(name, signal.SIGTERM)
        drains.append("%s %.1f s (exit %s)" % (name, time.monotonic() - t, status))
        check(status == 0, "%s drained and exited %s" % (name, status))
        cl.start_instance(name)
        wait_for(lambda: cl.server_status(name) == "UP", name + " back UP")
        time.sleep(1)
    r = run.result()
    clients.finish()
    logged = haproxy_streams(cl.haproxy_log, started, time.time() + 1)
    bad = [e for e in logged if failed(e)]
    check(r["failed"] == 0 and r["completed"] > 0, "bench: " + describe(r))
    check(not bad, "HAProxy's log: %d streams, %d failed" % (len(logged), len(bad)))
    check(clients.broken == 0, "EventSource-like clients: %d streams done, %d broken" % (clients.done, clients.broken))
    summary.append("3. rolling restart under bench -c %d: %d of %d streams failed; HAProxy logged %d streams, %d failed; "
                   "drains: %s" % (LOAD, r["failed"], r["started"], len(logged), len(bad), ", ".join(drains)))


BROWSER_JS = """
const finish = arguments[arguments.length - 1];
const t0 = performance.now();
const rec = [];
for (let i = 0; i < 10; i++) {
  const r = {opened: null, done: null};
  rec.push(r);
  const es = new EventSource('/stream/slow?n=' + i);
  es.addEventListener('open', () => { if (r.opened === null) r.opened = performance.now() - t0; });
  es.addEventListener('done', () => {
    r.done = performance.now() - t0;
    es.close();
    if (rec.every(x => x.done !== null)) finish({rec, protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol});
  });
}
"""


def browser(cl):
    print("\n4. the page at / in headless Chromium: 10 EventSource streams at once", flush=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--ignore-certificate-errors"):
        options.add_argument(a)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_script_timeout(30)
        results = {}
        for label, url in (("HTTP/2 through HAProxy", "https://localhost:%d/" % cl.tls_port),
                           ("HTTP/1.1 direct", "http://127.0.0.1:%d/" % cl.ports["a"])):
            driver.get(url)
            out = driver.execute_async_script(BROWSER_JS)
            rec = out["rec"]
            first_done = min(r["done"] for r in rec)
            together = sum(1 for r in rec if r["opened"] < first_done)
            seventh = sorted(r["opened"] for r in rec)[6]
            results[label] = (out["protocol"], together, rec, seventh)
            print("  %s (%s): %d of 10 open before the first `done` (%.0f ms), the 7th opened at %.0f ms; all done by %.0f ms"
                  % (label, out["protocol"], together, first_done, seventh, max(r["done"] for r in rec)), flush=True)
        proto, together, rec, _ = results["HTTP/2 through HAProxy"]
        check(proto == "h2" and together == 10 and all(r["done"] for r in rec),
              "over HTTP/2 (%s): all 10 streams open at once and reach `done`" % proto)
        proto, together, rec, seventh = results["HTTP/1.1 direct"]
        check(proto == "http/1.1" and together == 6 and all(r["done"] for r in rec),
              "over HTTP/1.1 direct: %d open at once, the 7th waits for one to end; all 10 reach `done`" % together)
        summary.append("4. Chromium, 10 EventSource on /: over h2 via HAProxy %d open at once (7th at %.0f ms), all done; "
                       "over HTTP/1.1 direct %d at once, the 7th opened at %.0f ms, all done"
                       % (results["HTTP/2 through HAProxy"][1], results["HTTP/2 through HAProxy"][3], together, seventh))
    finally:
        driver.quit()


def same_port_restart(cl):
    print("\n6. a second instance on a served port; a restart on one port under load", flush=True)
    port = cl.ports["a"]
    p = subprocess.run(cl.instance_args("a"), capture_output=True, text=True, timeout=20)
    line = p.stderr.strip()
    check(p.returncode == 2 and "address in use" in line and str(port) in line and len(line.splitlines()) == 1,
          "a second `serve` on port %d exits %d: %s" % (port, p.returncode, line))
    run = bench("http://127.0.0.1:%d/stream/load" % port, 10)
    time.sleep(3)
    cl.start_instance("a", ["--reuse-port"], key="a2")
    wait_for(lambda: listeners(port) == 2, "both processes listen on %d" % port)
    t = time.monotonic()
    status = cl.stop("a", signal.SIGTERM)
    drained = time.monotonic() - t
    check(status == 0, "the old process drained in %.1f s and exited %s" % (drained, status))
    r = run.result()
    cl.procs["a"] = cl.procs.pop("a2")
    served = get(port, "/metrics")[1].decode()
    new_streams = sum(float(l.split()[-1]) for l in served.splitlines() if l.startswith("streamproxy_streams_total"))
    check(r["failed"] == 0 and new_streams > 0,
          "bench -c %d directly on port %d: %s; the new process served %d streams" % (LOAD, port, describe(r), new_streams))
    summary.append("6. second serve on a served port: exit %d, \"%s\"; restart on port %d under bench -c %d: "
                   "%d of %d streams failed, old drained in %.1f s, new served %d" % (
                       p.returncode, line, port, LOAD, r["failed"], r["started"], drained, new_streams))


def main():
    work = tempfile.mkdtemp(prefix="stream-proxy-scaleout.")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/key.pem", "-out",
                    work + "/crt.pem", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    with open(work + "/cert.pem", "w") as f:
        f.write(open(work + "/crt.pem").read() + open(work + "/key.pem").read())
    cl = Cluster(work)
    print("scaleout: work dir %s; instances on %s, HAProxy TLS :%d, plain :%d" % (
        work, ", ".join("%s :%d" % kv for kv in cl.ports.items()), cl.tls_port, cl.http_port), flush=True)
    try:
        cl.start_origin()
        for name in "abc":
            cl.start_instance(name)
        cl.start_haproxy()
        steps = sys.argv[1:] or ["1", "2", "3", "4", "6"]
        for step in steps:
            {"1": lambda: show_one_http2_stream(cl, work + "/crt.pem"), "2": lambda: kill_one_under_load(cl),
             "3": lambda: rolling_restart(cl), "4": lambda: browser(cl), "6": lambda: same_port_restart(cl)}[step]()
    finally:
        cl.shutdown()
    print("\nscaleout counts:")
    for line in summary:
        print("  " + line)
    if failures:
        print("\nscaleout: %d check(s) FAILED (logs in %s):" % (len(failures), work))
        for f in failures:
            print("  " + f)
        return 1
    print("\nscaleout: all checks passed (logs in %s)" % work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
