"""Summarises bench/out/ (written by bench/run.sh) into BENCHMARKS.md and a latency chart.

Medians are taken over the runs of each workload; every figure comes from the same `make bench`.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w7_summary  # noqa: E402  (bench/w7_summary.py, shared with bench/w7-coalesce.sh)
import report_data  # noqa: E402  (bench/report_data.py: reading bench/out/)
import report_peers  # noqa: E402  (bench/report_peers.py: the peers' tables, chart and targets)

out_dir, md_path, png_path = sys.argv[1], sys.argv[2], sys.argv[3]
peers_png = sys.argv[4] if len(sys.argv) > 4 else os.path.join(os.path.dirname(png_path), "peers.png")


from report_data import fnum, hist, med, metric, resources, reuse, runs  # noqa: E402

report_data.out_dir = out_dir


rows = []
summary = {}
for name in ["W1-c10", "W1-c100", "W1-c100-new", "W1-c1000", "W2", "W3", "W4", "W5", "W6",
             "W8-c10", "W8-c100", "W8-c1000", "W8-reconnect", "W1-reconnect"]:
    results, files = runs(name)
    if not results:
        continue
    rss, thr, fds, cpu, cpu_per_stream = resources(files)
    s = {
        "streams": med([r["streamsPerSecond"] for r in results]),
        "events": med([r["eventsPerSecond"] for r in results]),
        "ttfb50": hist(results, "firstByte", "p50Ms"),
        "chunk50": hist(results, "firstChunk", "p50Ms"),
        "done50": hist(results, "done", "p50Ms"),
        "done90": hist(results, "done", "p90Ms"),
        "done99": hist(results, "done", "p99Ms"),
        "done999": hist(results, "done", "p99.9Ms"),
        "errors": results[len(results) // 2]["errors"],
        "mostOpen": max(r["mostOpen"] for r in results),
        "rss": rss, "threads": thr, "fds": fds, "cpu": cpu, "cpuPerStream": cpu_per_stream,
        "reuse": reuse(files),
        "benchCPU": med([r["cpuSeconds"] for r in results]),
        "benchRSS": med([r["maxRSSKiB"] / 1024 for r in results]),
        "runs": len(results),
    }
    summary[name] = s

wrk = []
for f in sorted(glob.glob(f"{out_dir}/W1-wrk-run*.txt")):
    m = re.search(r"Requests/sec:\s+([\d.]+)", open(f).read())
    if m:
        wrk.append(float(m.group(1)))
wrk_med = med(wrk)

# stream-proxy against its peers, W1 and W8 (bench/report_peers.py)
peers = report_peers.load(runs, resources, med, hist, summary)

idle_rss = None
if os.path.exists(f"{out_dir}/W6-idle.txt"):
    m = re.search(r"rss_kb=(\d+) threads=(\d+)", open(f"{out_dir}/W6-idle.txt").read())
    if m:
        idle_rss, idle_threads = int(m.group(1)) / 1024, int(m.group(2))

settings = open(f"{out_dir}/settings.txt").read() if os.path.exists(f"{out_dir}/settings.txt") else ""

# ---- chart: W1 done latency percentiles against concurrency
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cs = [c for c in [10, 100, 1000] if f"W1-c{c}" in summary]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, label in [("done50", "p50"), ("done90", "p90"), ("done99", "p99"), ("done999", "p99.9")]:
        ax.plot(cs, [summary[f"W1-c{c}"][key] for c in cs], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams (closed loop)")
    ax.set_ylabel("time to done (ms)")
    ax.set_title("W1: 5 x 1 KiB upstreams, prefix 50 — stream-proxy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
except Exception as e:  # the report is still useful without the chart
    print(f"chart skipped: {e}", file=sys.stderr)
try:
    if peers:
        report_peers.chart(peers, peers_png)
except Exception as e:
    print(f"peers chart skipped: {e}", file=sys.stderr)

lines = []
lines.append("# StreamProxy benchmarks\n")
lines.append("Measured by `make bench` (bench/run.sh, bench/report.py) on this project's 2-core machine: the origin "
             "(nginx for W1-W4 and W8, the built-in test origin for W5 and W6), the proxy (release build) and the load "
             "generator (`stream-proxy bench`) share the two cores. "
             f"Each figure is the median of {summary.get('W1-c100', {}).get('runs', '?')} runs measured in one "
             "`make bench`; W1 (at each concurrency), W2 and W3 run in rounds (one run of each per round, each on a proxy "
             "of its own), so that the ratios between them compare neighbouring minutes. Latencies are from each stream's start (open loop: its scheduled start). CPU per stream is "
             "the server's process tree alone (/proc ticks just before and after each run, over the streams completed): "
             "on a shared machine it holds still where rates drift.\n")
lines.append("## Workloads\n")
lines.append("| workload | load | streams/s | events/s | first byte p50 | first chunk p50 | done p50 | done p99 | done p99.9 | errors | proxy peak RSS | threads | fds | proxy CPU s | proxy CPU µs/stream | reuse |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
loads = {"W1-c10": "c=10", "W1-c100": "c=100", "W1-c100-new": "c=100, new connection per stream", "W1-c1000": "c=1000", "W2": "c=100", "W3": "c=100", "W4": "open, 10/s",
         "W5": "c=100", "W6": "8000 at once", "W8-c10": "c=10", "W8-c100": "c=100", "W8-c1000": "c=1000",
         "W8-reconnect": "c=100, origin closes after each response", "W1-reconnect": "c=100, origin closes after each response"}
for name, s in summary.items():
    errs = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
    reuse_text = "-" if s["reuse"] is None else f"{s['reuse'] * 100:.1f}%"
    lines.append(f"| {name} | {loads.get(name, '')} | {fnum(s['streams'])} | {fnum(s['events'], 0)} | {fnum(s['ttfb50'], 2)} ms | "
                 f"{fnum(s['chunk50'], 2)} ms | {fnum(s['done50'], 2)} ms | {fnum(s['done99'], 2)} ms | {fnum(s['done999'], 2)} ms | {errs} | "
                 f"{fnum(s['rss'])} MB | {fnum(s['threads'], 0)} | {fnum(s['fds'], 0)} | {fnum(s['cpu'], 2)} | {fnum(s['cpuPerStream'], 0)} | {reuse_text} |")
lines.append("")
lines.append("nginx (bench/nginx/workloads.conf), five distinct URLs of one file (`?u=0..4`) per route: W1: 1 KiB, prefix 50. "
             "W2: 64 KiB, prefix 50. W3: 100 MiB, prefix 1 KiB. W4: `/delay/10,50,100,200,400` (echo_sleep before the "
             "head, then 1 KiB), prefix 1 KiB. W8: W1 over TLS. The harness reuses a connection whose stream ended cleanly "
             "for the next stream, as wrk and browsers do; W1-c100-new opens a new one for every stream. Built-in origin: "
             "W5: refused port, `.invalid` host, `/stall` (ends at readTimeout, 15 s), 2 x `/bytes/1024`. W6: one upstream "
             "trickling at 100 B/s, prefix 1 KiB (each stream lasts ~10 s).\n")
if wrk_med and "W1-c100" in summary:
    s = summary.get("W1-c100")
    lines.append("## The harness against wrk (W1, c=100)\n")
    lines.append(f"wrk -t1 -c100: {fnum(wrk_med)} requests/s (median); `stream-proxy bench -c 100`: {fnum(s['streams'])} streams/s; "
                 f"ratio {s['streams'] / wrk_med * 100:.0f}%. The bench process used {fnum(s['benchCPU'], 2)} s CPU per run and "
                 f"{fnum(s['benchRSS'])} MB RSS.\n")
if "W6" in summary and idle_rss and summary["W6"]["rss"] is not None:
    s = summary["W6"]
    per = (s["rss"] - idle_rss) * 1024 / max(1, s["mostOpen"])
    lines.append("## Held streams (W6)\n")
    lines.append(f"{s['mostOpen']} streams open at once; proxy RSS {fnum(idle_rss)} MB idle, {fnum(s['rss'])} MB at peak: "
                 f"{per:.1f} KiB per open stream (including its upstream transfer). Threads: {idle_threads} idle, "
                 f"{fnum(s['threads'], 0)} at peak.\n")
if "W1-c100" in summary and "W3" in summary and None not in (summary["W1-c100"]["rss"], summary["W3"]["rss"]):
    lines.append("## Memory does not follow body size (W3 against W1)\n")
    lines.append(f"Peak RSS: W1 {fnum(summary['W1-c100']['rss'])} MB, W3 (100 MiB bodies) {fnum(summary['W3']['rss'])} MB: "
                 f"difference {fnum(summary['W3']['rss'] - summary['W1-c100']['rss'])} MB.\n")
lines += report_peers.markdown(peers, fnum, os.path.basename(peers_png))
lines += report_peers.tls_section(summary, fnum, out_dir)
lines.append("![W1 latency percentiles against concurrency](bench/latency.png)\n")

# ---- the disconnect storm of issue 9 (bench/storm.sh)
storm = []
for f in sorted(glob.glob(f"{out_dir}/storm-round*.json"), key=lambda p: int(re.search(r"round(\d+)", p).group(1))):
    d = json.load(open(f))
    m = f.replace(".json", ".metrics.txt")
    text = open(m).read() if os.path.exists(m) else ""
    storm.append((d, metric(text, "streamproxy_upstream_connections_open"), metric(text, "streamproxy_upstream_connections_idle")))
if storm:
    lines.append("## The disconnect storm (issue 9)\n")
    lines.append("nginx origin (5 distinct 1 KiB URLs, prefix 50), 2 workers, maxConnections = maxConnectionsPerHost = "
                 "maxKeepalive = 100. Each round: `wrk -t1 -c100 -d5s` (which drops its 100 streams mid-flight when it "
                 "stops), then at once `stream-proxy bench -c 100 -d 5s --new-connections`. Leases against idle "
                 "connections are read from /metrics after the round: equal when no slot leaked.\n")
    lines.append("| round | streams/s | errors | done p99 | done max | leases held / idle connections |")
    lines.append("|---|---|---|---|---|---|")
    for n, (d, held, idle) in enumerate(storm, 1):
        errs = ", ".join(f"{k} {v}" for k, v in d["errors"].items()) or "none"
        lines.append(f"| {n} | {fnum(d['streamsPerSecond'])} | {errs} | {d['done'].get('p99Ms', '-')} ms | "
                     f"{d['done'].get('maxMs', '-')} ms | {held:.0f} / {idle:.0f} |")
    lines.append("")

# ---- coalesced fetches, issue 12 (bench/w7-coalesce.sh)
w7_targets = []
if os.path.exists(f"{out_dir}/W7-runs.csv"):
    w7 = w7_summary.summarise(w7_summary.load(f"{out_dir}/W7-runs.csv"))
    w7_lines, w7_targets = w7_summary.markdown(w7)
    lines.append("## Coalesced fetches (W7, issue 12)\n")
    lines.append("nginx origin (bench/nginx/delay.conf): five distinct URLs, each answering 200 ms after the request "
                 "(`echo_sleep`), prefix 1 KiB; `stream-proxy bench -c 1000` (closed loop) against two proxies started "
                 "side by side, without and with `--coalesce`, their runs interleaved. Two pool settings: the defaults "
                 "(maxConnectionsPerHost 10, so uncoalesced streams queue and fail at poolTimeout), and `wide` "
                 "(maxConnections, maxConnectionsPerHost and maxKeepalive 5000: nothing queues). Rates are over each "
                 "bench process's whole run; fetches are the origin's access-log lines; \"most at once\" is from the "
                 "log's start and end times; proxy CPU is from /proc of the proxy alone.\n")
    lines += w7_lines

# ---- the targets of issue 5, each computed from the figures above
targets = []


def holds(check):
    """A target's verdict; a figure that is missing (a failed run, no samples) does not meet it."""
    try:
        return bool(check())
    except (TypeError, KeyError, ZeroDivisionError):
        return False


def target(name, measured, met):
    targets.append(f"| {name} | {measured} | {'-' if met is None else ('yes' if met else '**no**')} |")


w1 = summary.get("W1-c100")
if w1:
    target("W1 c=100 ≥ 5,000 streams/s", f"{fnum(w1['streams'])} streams/s", holds(lambda: w1["streams"] >= 5000))
    target("W1 c=100 done p99 ≤ 50 ms", f"{fnum(w1['done99'], 2)} ms", holds(lambda: w1["done99"] <= 50))
    target("W1 upstream connections reused (from /metrics)", "-" if w1["reuse"] is None else f"{w1['reuse'] * 100:.1f}%",
           w1["reuse"] is not None and w1["reuse"] >= 0.99)
    for peer, factor in [("fastapi", 20), ("hummingbird", 3)]:
        p = peers.get(("W1", peer, 100))
        if p and p["streams"] and w1["streams"]:
            ratio = w1["streams"] / p["streams"]
            target(f"W1 c=100 ≥ {factor}x {peer}", f"{ratio:.1f}x ({fnum(w1['streams'])} against {fnum(p['streams'])})", ratio >= factor)
if "W4" in summary:
    target("W4 first byte p50 ≤ 2 ms", f"{fnum(summary['W4']['ttfb50'], 2)} ms", holds(lambda: summary["W4"]["ttfb50"] <= 2))
if w1 and "W3" in summary:
    target("W3 peak RSS within 10 MB of W1", f"{fnum(summary['W3']['rss'])} MB against {fnum(w1['rss'])} MB",
           holds(lambda: abs(summary["W3"]["rss"] - w1["rss"]) <= 10))
if "W6" in summary and idle_rss and summary["W6"]["rss"] is not None:
    s6 = summary["W6"]
    per = (s6["rss"] - idle_rss) * 1024 / max(1, s6["mostOpen"])
    target("W6 ≥ 8,000 open streams", f"{s6['mostOpen']:,}", s6["mostOpen"] >= 8000)
    target("W6 ≤ 20 KiB RSS per open stream", f"{per:.1f} KiB", per <= 20)
    target("W6 threads unchanged", f"{idle_threads} idle, {fnum(s6['threads'], 0)} at peak", s6["threads"] == idle_threads)
w10, w1000 = summary.get("W1-c10"), summary.get("W1-c1000")
if w10 and w1000:
    target("W1 proxy CPU per stream at c=1000 within 15% of c=10 (issue 9)",
           f"{fnum(w1000['cpuPerStream'], 0)} µs against {fnum(w10['cpuPerStream'], 0)} µs",
           holds(lambda: w1000["cpuPerStream"] <= 1.15 * w10["cpuPerStream"]))
if storm:
    clean = sum(1 for d, held, idle in storm if not d["errors"] and held == idle)
    target("storm: every round clean (no errors, every lease an idle connection after it) (issue 9)",
           f"{clean} of {len(storm)} rounds", clean == len(storm))
if wrk_med and w1:
    target("bench within 10% of wrk (W1 c=100)", f"{w1['streams'] / wrk_med * 100:.0f}% ({fnum(w1['streams'])} against {fnum(wrk_med)})",
           w1["streams"] >= 0.9 * wrk_med)
    target("bench's own RSS and CPU reported", f"{fnum(w1['benchRSS'])} MB, {fnum(w1['benchCPU'], 2)} s CPU per run", True)
report_peers.targets(summary, peers, target, holds, fnum)
for name, measured, met in w7_targets:
    target(f"{name} (issue 12)", measured, met)
if targets:
    lines.append("## Targets (issues 5, 9, 12 and 13)\n")
    lines.append("| target | measured (median) | met |")
    lines.append("|---|---|---|")
    lines += targets
    lines.append("")
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
if os.path.exists(notes):
    lines.append(open(notes).read().strip() + "\n")
lines.append("## Settings used\n")
lines.append("```\n" + settings.strip() + "\n```\n")
lines.append("Defaults otherwise (PRODUCT.md §3): maxConnections 100, maxConnectionsPerHost 10, maxKeepalive 20, "
             "keepaliveExpiry 5 s, readTimeout 15 s, poolTimeout 5 s, streamBuffer 64 KiB, drainLimit 64 KiB.\n")
open(md_path, "w").write("\n".join(lines) + "\n")
