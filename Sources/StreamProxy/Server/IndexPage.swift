/// The page at `GET /`: runs a route's fan-out in the browser with `EventSource` and shows one
/// card per upstream filling in live. Self-contained (inline CSS and JS, nothing fetched but
/// `/routes` and the stream), so it works offline.
///
/// Hooks for the browser tests: each card has `data-i` and `data-state` (waiting, streaming,
/// done, error); `#summary` gets `data-state="done"` after the `done` event; `window.__streamProxy`
/// holds `{fanouts, done, events}` (and `readyState`, the EventSource's).
enum IndexPage {
    static let html: [UInt8] = Array(#"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>StreamProxy</title>
    <link rel="icon" href="data:,">
    <style>
    :root {
      --bg: #f5f6f8; --fg: #1d2129; --muted: #687080; --card: #fff; --line: #e1e4ea;
      --accent: #3a63d8; --accent-fg: #fff; --pre: #f8f9fb;
      --ok: #1f8a4c; --ok-bg: #e3f4ea; --redir: #2f66c9; --redir-bg: #e4ecfa;
      --warn: #a76200; --warn-bg: #fdf0dc; --bad: #c8322c; --bad-bg: #fbe6e4;
      --bar: #8aa4ec;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #15171c; --fg: #e4e7ed; --muted: #9199a8; --card: #1e2128; --line: #30343d;
        --accent: #6d8ff0; --accent-fg: #0f1115; --pre: #181a20;
        --ok: #5fcf8c; --ok-bg: #1c3326; --redir: #7fa6ef; --redir-bg: #1d2940;
        --warn: #f0b45c; --warn-bg: #3a2c17; --bad: #f2827c; --bad-bg: #3d1f1e;
        --bar: #4e66ad;
      }
    }
    * { box-sizing: border-box; }
    html { -webkit-text-size-adjust: 100%; }
    body {
      margin: 0; background: var(--bg); color: var(--fg);
      font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
    }
    main { max-width: 1280px; margin: 0 auto; padding: 20px 20px 32px; }
    header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 14px; }
    h1 { font-size: 20px; margin: 0; letter-spacing: -0.01em; }
    header p { margin: 0; color: var(--muted); }
    code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
    form {
      display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px 14px;
      background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px;
    }
    label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
    select, input {
      font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--line);
      border-radius: 6px; padding: 6px 8px; min-width: 0;
    }
    select { min-width: 140px; }
    input[type=number] { width: 110px; }
    button {
      font: inherit; font-weight: 600; color: var(--accent-fg); background: var(--accent); border: 0;
      border-radius: 6px; padding: 7px 20px; cursor: pointer;
    }
    button:disabled { opacity: .55; cursor: default; }
    #url { flex: 1 1 220px; align-self: flex-end; padding-bottom: 8px; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
    #status {
      display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: baseline;
      margin: 14px 2px 10px; color: var(--muted);
    }
    #summary { color: var(--fg); font-weight: 600; }
    #summary[data-state=done] .ok { color: var(--ok); }
    #summary[data-state=done] .failed { color: var(--bad); }
    #banner {
      display: none; margin: 0 0 12px; padding: 9px 12px; border-radius: 8px;
      background: var(--bad-bg); color: var(--bad); border: 1px solid currentColor;
    }
    #banner.show { display: block; }
    #cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
    @media (max-width: 600px) {
      main { padding: 12px 10px 24px; }
      #cards { grid-template-columns: 1fr; }
      form { padding: 10px; }
      select, input[type=number] { width: 100%; }
      label { flex: 1 1 120px; }
    }
    .card {
      display: flex; flex-direction: column; min-width: 0;
      background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--line);
      border-radius: 10px; padding: 10px 12px 10px;
    }
    .card[data-state=streaming] { border-left-color: var(--accent); }
    .card[data-state=done] { border-left-color: var(--ok); }
    .card[data-state=error] { border-left-color: var(--bad); }
    .top { display: flex; align-items: flex-start; gap: 8px; min-width: 0; }
    .idx { font-weight: 700; color: var(--muted); font-size: 12px; line-height: 18px; }
    .url {
      flex: 1; min-width: 0; font-size: 12px; line-height: 18px; overflow-wrap: anywhere;
      display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; overflow: hidden;
    }
    .url .host { color: var(--muted); }
    .pill {
      margin-top: 1px; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
      padding: 1px 7px; border-radius: 999px; background: var(--bg); color: var(--muted); white-space: nowrap;
    }
    .card[data-state=streaming] .state { background: var(--redir-bg); color: var(--accent); }
    .card[data-state=done] .state { background: var(--ok-bg); color: var(--ok); }
    .card[data-state=error] .state { background: var(--bad-bg); color: var(--bad); }
    .meta { display: flex; align-items: center; gap: 8px; margin: 8px 0 6px; min-height: 22px; font-size: 12px; color: var(--muted); }
    .badge { font-weight: 700; font-size: 12px; padding: 1px 7px; border-radius: 5px; display: none; }
    .badge.s2 { display: inline-block; background: var(--ok-bg); color: var(--ok); }
    .badge.s3 { display: inline-block; background: var(--redir-bg); color: var(--redir); }
    .badge.s4 { display: inline-block; background: var(--warn-bg); color: var(--warn); }
    .badge.s5 { display: inline-block; background: var(--bad-bg); color: var(--bad); }
    .ctype { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 40%; }
    .ttfb { flex: 1; display: none; align-items: center; gap: 6px; min-width: 80px; }
    .track { display: block; flex: 1; height: 6px; background: var(--bg); border-radius: 3px; overflow: hidden; }
    .bar { display: block; height: 100%; width: 0; background: var(--bar); border-radius: 3px; transition: width .25s ease; }
    .ttfb.show { display: flex; }
    .ttfb-label { font-size: 11px; }
    .ttfb-ms { min-width: 58px; text-align: right; font-variant-numeric: tabular-nums; }
    .nohead { display: none; }
    .card[data-state=error] .nohead.show { display: inline; }
    pre {
      margin: 0; flex: 1; min-height: 5.5em; max-height: 11.5em; overflow: auto; padding: 7px 9px;
      background: var(--pre); border: 1px solid var(--line); border-radius: 6px;
      font-size: 11.5px; line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere;
    }
    pre:empty::before { content: "waiting for the first byte…"; color: var(--muted); font-family: system-ui, sans-serif; }
    .card[data-state=streaming] pre:empty::before { content: "no body bytes yet…"; }
    .card[data-state=done] pre:empty::before { content: "empty body"; }
    .card[data-state=error] pre:empty { display: none; }
    .err {
      display: none; margin-top: 8px; padding: 6px 9px; border-radius: 6px;
      background: var(--bad-bg); color: var(--bad); font-size: 12px; overflow-wrap: anywhere;
    }
    .card[data-state=error] .err { display: block; }
    .kind { font-weight: 700; margin-right: 6px; }
    .foot { display: flex; gap: 12px; margin-top: 7px; font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
    .trunc { color: var(--warn); font-weight: 600; display: none; }
    .trunc.show { display: inline; }
    .empty { color: var(--muted); padding: 24px 4px; }
    footer { margin: 18px 2px 0; color: var(--muted); font-size: 12px; max-width: 760px; }
    footer .links { white-space: nowrap; margin-left: 6px; }
    footer a { color: var(--accent); margin-right: 8px; text-decoration: none; }
    footer a:hover { text-decoration: underline; }
    </style>
    </head>
    <body>
    <main>
    <header>
      <h1>StreamProxy</h1>
      <p>Fans a route out to its upstreams and streams a prefix of each body as it arrives.</p>
    </header>
    <form id="form" autocomplete="off">
      <label>Route <select id="route"></select></label>
      <label>Prefix (bytes) <input id="prefix" type="number" min="1" step="1" value="1024"></label>
      <label>Order <select id="order"><option value="completion">completion</option><option value="sequential">sequential</option></select></label>
      <button id="run" type="submit" disabled>Run</button>
      <span id="url" class="mono"></span>
    </form>
    <div id="status">
      <span id="summary" data-state="idle">Loading routes…</span>
      <span id="elapsed"></span>
      <span id="count">0 events</span>
    </div>
    <div id="banner" role="alert"></div>
    <div id="cards"></div>
    <footer>
      One card per upstream: its status, its time to first byte (the bar is scaled to the slowest),
      and the first bytes of its body as they arrived. An upstream that fails does not stop the others.
      <span class="links"><a href="/routes">/routes</a> <a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a></span>
    </footer>
    </main>
    <script>
    "use strict";
    (function () {
      const $ = (id) => document.getElementById(id);
      const form = $("form"), routeSel = $("route"), prefixIn = $("prefix"), orderSel = $("order"),
            runBtn = $("run"), urlEl = $("url"), summary = $("summary"), elapsedEl = $("elapsed"),
            countEl = $("count"), banner = $("banner"), cardsEl = $("cards");
      let routes = [], es = null, cards = [], maxTtfb = 0, started = 0, timer = 0;
      const state = { fanouts: 0, done: false, events: 0 };
      Object.defineProperty(state, "readyState", { enumerable: true, get: () => (es ? es.readyState : -1) });
      window.__streamProxy = state;

      function el(tag, cls, text) {
        const e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined) e.textContent = text;
        return e;
      }
      function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms"; }
      function fmtBytes(n) { return n.toLocaleString("en-US") + " B"; }
      function setSummary(text, st) {
        summary.textContent = text;
        summary.dataset.state = st;
      }
      function streamURL() {
        const r = encodeURIComponent(routeSel.value);
        const p = parseInt(prefixIn.value, 10);
        let q = "?prefix=" + (p > 0 ? p : 1);
        if (orderSel.value !== "completion") q += "&order=" + orderSel.value;
        return "/stream/" + r + q;
      }
      function showURL() { urlEl.textContent = routeSel.value ? "GET " + streamURL() : ""; }

      // Routes.
      fetch("/routes", { cache: "no-store" })
        .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then((j) => {
          routes = j.routes || [];
          for (const r of routes) {
            const o = el("option", "", r.name + " (" + r.upstreams.length + ")");
            o.value = r.name;
            routeSel.append(o);
          }
          if (!routes.length) { setSummary("No routes configured.", "idle"); return; }
          routeSel.value = j["default"] || routes[0].name;
          pickRoute();
          runBtn.disabled = false;
          setSummary("Pick a route and press Run.", "idle");
        })
        .catch((e) => { setSummary("Could not load /routes: " + e.message, "error"); });

      function pickRoute() {
        const r = routes.find((x) => x.name === routeSel.value);
        if (r) prefixIn.value = r.prefix;
        showURL();
      }
      routeSel.addEventListener("change", pickRoute);
      prefixIn.addEventListener("input", showURL);
      orderSel.addEventListener("change", showURL);
      form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });

      // Cards.
      function makeCard(u) {
        const c = el("div", "card");
        c.dataset.i = u.i;
        c.dataset.state = "waiting";
        const top = el("div", "top");
        const url = el("span", "url mono");
        const m = /^([a-z][a-z0-9+.-]*:\/\/[^\/?#]*)(.*)$/i.exec(u.url);
        if (m) {
          url.append(el("span", "host", m[1]));
          // Line breaks after a slash or before ? and &, rather than inside a word.
          m[2].split(/(?<=\/)|(?=[?&])/).forEach((part, k) => {
            if (k) url.append(document.createElement("wbr"));
            url.append(part);
          });
        } else {
          url.textContent = u.url;
        }
        url.title = u.url;
        const st = el("span", "pill state", "waiting");
        top.append(el("span", "idx", "#" + u.i), url, st);
        const meta = el("div", "meta");
        const badge = el("span", "badge");
        const ctype = el("span", "ctype");
        const ttfb = el("span", "ttfb");
        const track = el("span", "track"), bar = el("span", "bar"), ttfbMs = el("span", "ttfb-ms");
        ttfb.title = "time to first byte";
        track.append(bar);
        ttfb.append(el("span", "ttfb-label", "ttfb"), track, ttfbMs);
        const nohead = el("span", "nohead", "no response");
        meta.append(badge, ctype, ttfb, nohead);
        const pre = el("pre");
        const err = el("div", "err");
        const kind = el("span", "kind"), msg = el("span", "msg");
        err.append(kind, msg);
        const foot = el("div", "foot");
        const bytes = el("span", "bytes"), ms = el("span", "ms"), trunc = el("span", "trunc", "truncated");
        trunc.title = "the body went on past the prefix";
        foot.append(bytes, ms, trunc);
        c.append(top, meta, pre, err, foot);
        return { el: c, st, badge, ctype, ttfbEl: ttfb, bar, ttfbMs, nohead, pre, kind, msg, bytes, ms, trunc, ttfb: -1 };
      }
      function setState(c, s) { c.el.dataset.state = s; c.st.textContent = s; }
      function scaleBars() {
        for (const c of cards) {
          if (c.ttfb >= 0) c.bar.style.width = (maxTtfb > 0 ? Math.max(2, 100 * c.ttfb / maxTtfb) : 100) + "%";
        }
      }
      function tick() { elapsedEl.textContent = fmtMs(performance.now() - started) + " elapsed"; }

      function stop() {
        if (es) es.close();
        clearInterval(timer);
        runBtn.disabled = false;
      }

      function run() {
        stop();
        banner.className = ""; banner.textContent = "";
        cardsEl.textContent = "";
        cards = []; maxTtfb = 0;
        state.done = false; state.events = 0;
        countEl.textContent = "0 events";
        setSummary("Connecting…", "running");
        runBtn.disabled = true;
        started = performance.now();
        tick();
        timer = setInterval(tick, 100);
        const source = new EventSource(streamURL());
        es = source;
        const on = (name, fn) => source.addEventListener(name, (e) => {
          // `open` and `error` are also the names of EventSource's own events, which carry no data.
          if (source !== es || !(e instanceof MessageEvent)) return;
          state.events++;
          countEl.textContent = state.events + (state.events === 1 ? " event" : " events");
          let d;
          try { d = JSON.parse(e.data); } catch (x) { return; }
          fn(d);
        });
        const card = (i) => cards[i] || null;

        on("open", (d) => {
          state.fanouts++;
          cardsEl.textContent = "";
          cards = [];
          for (const u of d.upstreams) {
            const c = makeCard(u);
            cards[u.i] = c;
            cardsEl.append(c.el);
          }
          if (!d.upstreams.length) cardsEl.append(el("div", "empty", "This route has no upstreams."));
          setSummary("Streaming " + d.upstreams.length + " upstreams, prefix " + fmtBytes(d.prefix) +
                     ", " + d.order + " order…", "running");
        });
        on("head", (d) => {
          const c = card(d.i); if (!c) return;
          setState(c, "streaming");
          c.badge.textContent = d.status;
          c.badge.className = "badge s" + Math.min(5, Math.max(2, Math.floor(d.status / 100)));
          c.ctype.textContent = d.contentType || "";
          c.ctype.title = d.contentType || "";
          c.ttfb = d.ttfbMs;
          c.ttfbEl.classList.add("show");
          c.ttfbMs.textContent = fmtMs(d.ttfbMs);
          if (d.ttfbMs > maxTtfb) maxTtfb = d.ttfbMs;
          scaleBars();
        });
        on("chunk", (d) => {
          const c = card(d.i); if (!c) return;
          c.pre.append(document.createTextNode(d.text));
        });
        on("end", (d) => {
          const c = card(d.i); if (!c) return;
          setState(c, "done");
          c.bytes.textContent = fmtBytes(d.bytes);
          c.bytes.title = d.bytes + " bytes forwarded";
          c.ms.textContent = fmtMs(d.ms);
          c.trunc.classList.toggle("show", !!d.truncated);
        });
        on("error", (d) => {
          const c = card(d.i); if (!c) return;
          setState(c, "error");
          c.nohead.classList.toggle("show", c.ttfb < 0);
          c.kind.textContent = d.kind;
          c.msg.textContent = d.message;
        });
        on("done", (d) => {
          state.done = true;
          stop();
          elapsedEl.textContent = "";
          summary.textContent = "";
          summary.dataset.state = "done";
          summary.append(el("span", "ok", d.ok + " ok"), " · ", el("span", "failed", d.failed + " failed"),
                         " · " + fmtMs(d.ms) + (d.shutdown ? " · cut short: the server is shutting down" : ""));
        });
        source.onerror = (e) => {
          if (e instanceof MessageEvent) return;     // an upstream's `error` event, handled above
          if (source !== es || state.done) return;   // finished or superseded: nothing to report
          // A reconnect would start a new fan-out, so stop here and let the user run again.
          const opened = cards.length > 0;
          stop();
          banner.textContent = opened
            ? "The connection to the server was lost before the stream finished. Press Run to try again."
            : "The server did not accept the stream (it may be busy, shutting down, or unreachable). Press Run to try again.";
          banner.className = "show";
          setSummary(opened ? "Interrupted." : "Not started.", "error");
          if (!opened) elapsedEl.textContent = "";
        };
      }
    })();
    </script>
    </body>
    </html>
    """#.utf8)
}
