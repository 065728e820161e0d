"""The proxy against its peers (issue 13), for bench/report.py: one table per workload (W1 on
nginx, W8 the same over TLS) of streams/s, done p50/p99/p99.9, CPU µs per stream of each server's
process tree (from /proc), RSS and threads, with ratios to stream-proxy taken in the same run; a
chart of streams/s and CPU per stream against concurrency for every server; the W8 section
(reuse, what a reconnect costs); and issue 13's targets.
"""
PEERS = ["hummingbird", "hummingbird-keepalive", "node", "fastapi"]
LABELS = {
    "stream-proxy": "stream-proxy",
    "hummingbird": "Hummingbird 2 + AHC (closing)",
    "hummingbird-keepalive": "Hummingbird 2 + AHC (keep-alive)",
    "node": "Node 20 http + Agent",
    "fastapi": "FastAPI + httpx",
}
CS = [10, 100, 1000]


def load(runs, resources, med, hist, summary):
    """{(workload, server, c): figures}, workload W1 or W8; stream-proxy's from `summary`."""
    table = {}
    for w in ["W1", "W8"]:
        for c in CS:
            s = summary.get(f"{w}-c{c}")
            if s:
                table[(w, "stream-proxy", c)] = s
            for peer in PEERS:
                name = f"peer-{peer}-c{c}" if w == "W1" else f"peer-{peer}-W8-c{c}"
                results, files = runs(name)
                results = [r for r in results if r.get("completed")]
                if not results:
                    continue
                rss, thr, fds, cpu, per_stream = resources(files)
                table[(w, peer, c)] = {
                    "streams": med([r["streamsPerSecond"] for r in results]),
                    "done50": hist(results, "done", "p50Ms"), "done99": hist(results, "done", "p99Ms"),
                    "done999": hist(results, "done", "p99.9Ms"),
                    "errors": results[len(results) // 2]["errors"], "rss": rss, "threads": thr,
                    "cpuPerStream": per_stream, "runs": len(results),
                }
    return table


def markdown(table, fnum, png_name):
    lines = []
    for w, title in [("W1", "W1 (5 x 1 KiB from nginx, five distinct URLs, prefix 50)"),
                     ("W8", "W8: W1 over TLS (nginx, a CA made by run.sh, trusted by --ca-file / the peer's setting)")]:
        rows = [(srv, c) for srv in ["stream-proxy"] + PEERS for c in CS if (w, srv, c) in table]
        if not any(srv != "stream-proxy" for srv, _ in rows):
            continue
        lines.append(f"## Against the usual alternatives: {title}\n")
        lines.append("Same origin, same load, same sitting (`stream-proxy bench`, closed loop). CPU is each server's whole "
                     "process tree (user + system ticks in /proc, read just before and after the harness ran) divided by "
                     "the streams it completed. Ratios: the peer's CPU per stream over stream-proxy's, and stream-proxy's "
                     "streams/s over the peer's, at the same concurrency.\n")
        lines.append("| server | c | streams/s | done p50 | done p99 | done p99.9 | CPU µs/stream | peak RSS | threads | errors | CPU it / ours | streams/s ours / it |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for srv, c in rows:
            p, ours = table[(w, srv, c)], table.get((w, "stream-proxy", c))
            cpu_ratio = streams_ratio = "-"
            if srv != "stream-proxy" and ours:
                if p["cpuPerStream"] and ours.get("cpuPerStream"):
                    cpu_ratio = f"{p['cpuPerStream'] / ours['cpuPerStream']:.1f}x"
                if p["streams"] and ours.get("streams"):
                    streams_ratio = f"{ours['streams'] / p['streams']:.1f}x"
            errs = ", ".join(f"{k} {v}" for k, v in p["errors"].items()) or "none"
            lines.append(f"| {LABELS[srv]} | {c} | {fnum(p['streams'])} | {fnum(p['done50'], 2)} ms | {fnum(p['done99'], 2)} ms | "
                         f"{fnum(p['done999'], 2)} ms | {fnum(p['cpuPerStream'], 0)} | {fnum(p['rss'])} MB | {fnum(p['threads'], 0)} | "
                         f"{errs} | {cpu_ratio} | {streams_ratio} |")
        lines.append("")
    if table:
        lines.append(f"![streams/s and CPU per stream against concurrency, every server](bench/{png_name})\n")
    return lines


def chart(table, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=110, sharex=True)
    for col, w in enumerate(["W1", "W8"]):
        for srv in ["stream-proxy"] + PEERS:
            cs = [c for c in CS if (w, srv, c) in table]
            if not cs:
                continue
            style = dict(marker="o", label=LABELS[srv], linewidth=2.5 if srv == "stream-proxy" else 1.5)
            axes[0][col].plot(cs, [table[(w, srv, c)]["streams"] for c in cs], **style)
            axes[1][col].plot(cs, [table[(w, srv, c)]["cpuPerStream"] for c in cs], **style)
        axes[0][col].set_title(f"{w}{' (TLS)' if w == 'W8' else ''}: 5 x 1 KiB from nginx, prefix 50")
        axes[0][col].set_ylabel("streams/s")
        axes[1][col].set_ylabel("server CPU µs per stream")
        axes[1][col].set_xlabel("concurrent streams (closed loop)")
        for row in (0, 1):
            axes[row][col].set_xscale("log")
            axes[row][col].set_yscale("log")
            axes[row][col].grid(True, which="both", alpha=0.3)
            axes[row][col].set_xticks(CS, [f"{c:,}" for c in CS])
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)


def tls_section(summary, fnum, out_dir):
    """W8's reuse and what a reconnect costs, from the W8 and *-reconnect runs of run.sh."""
    import os
    w1, w8, r8, r1 = (summary.get(k) for k in ["W1-c100", "W8-c100", "W8-reconnect", "W1-reconnect"])
    if not w8:
        return []
    lines = ["## HTTPS upstreams (W8)\n",
             "W8 is W1 with the five upstreams on nginx's TLS port (a CA and certificate made by run.sh with "
             "openssl; the proxy trusts the CA through `--ca-file`). Reuse is the proxy's /metrics "
             "(`streamproxy_upstream_connections_reused_total` against `..._opened_total`) over the run. A reconnect is "
             "priced by the same load on nginx ports that close every connection after one response "
             "(`keepalive_requests 1`), so that every transfer connects again: the proxy's CPU per stream beyond "
             "the kept-alive run, over the five connections each stream then opens. Over TLS, libcurl's session "
             "cache can resume the session; nginx logs whether each handshake did (`$ssl_session_reused`).\n",
             "| run | streams/s | done p99 | CPU µs/stream | upstream reuse |", "|---|---|---|---|---|"]
    for name, s in [("W1 c=100", w1), ("W8 c=100", w8), ("W1 c=100, origin closes after each response", r1),
                    ("W8 c=100, origin closes after each response", r8)]:
        if s:
            reuse = "-" if s["reuse"] is None else f"{s['reuse'] * 100:.1f}%"
            lines.append(f"| {name} | {fnum(s['streams'])} | {fnum(s['done99'], 2)} ms | {fnum(s['cpuPerStream'], 0)} | {reuse} |")
    lines.append("")
    for label, base, again in [("TLS", w8, r8), ("plain TCP", w1, r1)]:
        if base and again and base.get("cpuPerStream") and again.get("cpuPerStream"):
            per = (again["cpuPerStream"] - base["cpuPerStream"]) / 5
            lines.append(f"- A {label} reconnect costs the proxy about {per:.0f} µs of CPU "
                         f"({fnum(again['cpuPerStream'], 0)} against {fnum(base['cpuPerStream'], 0)} µs per stream, 5 connections a stream).")
    resumed = os.path.join(out_dir, "W8-reconnect-resumed.txt")
    if os.path.exists(resumed):
        counts = {k: int(n) for n, k in (line.split() for line in open(resumed) if line.strip())}
        total = sum(counts.values())
        if total:
            lines.append(f"- TLS session resumption on reconnect (nginx's log): {counts.get('r', 0):,} of {total:,} "
                         f"handshakes resumed ({counts.get('r', 0) / total * 100:.1f}%).")
    lines.append("")
    return lines


def targets(summary, table, target, holds, fnum):
    """Issue 13's targets, each from the figures of this run."""
    cpu = lambda name: summary.get(name, {}).get("cpuPerStream")  # noqa: E731
    w1 = cpu("W1-c100")
    if w1:
        target("W1 proxy CPU per stream ≤ 200 µs at c=100 (issue 13)", f"{fnum(w1, 0)} µs", holds(lambda: w1 <= 200))
    hb = table.get(("W1", "hummingbird-keepalive", 100))
    ours = table.get(("W1", "stream-proxy", 100))
    if hb and ours:
        target("W1 c=100: ≥ 4x less CPU per stream than Hummingbird keep-alive (issue 13)",
               f"{hb['cpuPerStream'] / ours['cpuPerStream']:.1f}x ({fnum(ours['cpuPerStream'], 0)} against {fnum(hb['cpuPerStream'], 0)} µs)"
               if hb["cpuPerStream"] and ours["cpuPerStream"] else "-",
               holds(lambda: hb["cpuPerStream"] >= 4 * ours["cpuPerStream"]))
        target("W1 c=100: ≥ 2.5x the streams/s of Hummingbird keep-alive (issue 13)",
               f"{ours['streams'] / hb['streams']:.1f}x ({fnum(ours['streams'])} against {fnum(hb['streams'])})" if hb["streams"] else "-",
               holds(lambda: ours["streams"] >= 2.5 * hb["streams"]))
    for w in ["W2", "W3"]:
        if w1 and cpu(w):
            target(f"{w} CPU per stream ≤ W1 + 20% (issue 13)", f"{fnum(cpu(w), 0)} against {fnum(w1, 0)} µs", holds(lambda: cpu(w) <= 1.2 * w1))
    w8 = summary.get("W8-c100")
    if w1 and w8 and w8.get("cpuPerStream"):
        target("W8 (TLS) CPU per stream within 1.5x of W1 (issue 13)", f"{fnum(w8['cpuPerStream'], 0)} against {fnum(w1, 0)} µs",
               holds(lambda: w8["cpuPerStream"] <= 1.5 * w1))
        target("W8 upstream reuse ≥ 99% (issue 13)", "-" if w8["reuse"] is None else f"{w8['reuse'] * 100:.1f}%",
               holds(lambda: w8["reuse"] >= 0.99))
    hb8 = table.get(("W8", "hummingbird-keepalive", 100)) or table.get(("W8", "hummingbird", 100))
    if w8 and hb8 and w8.get("cpuPerStream") and hb8.get("cpuPerStream"):
        target("W8: ≥ 3x less CPU per stream than Hummingbird (issue 13)",
               f"{hb8['cpuPerStream'] / w8['cpuPerStream']:.1f}x", holds(lambda: hb8["cpuPerStream"] >= 3 * w8["cpuPerStream"]))
