"""Reading bench/out/ for bench/report.py: the harness's JSON, the sampler's CSV, the CPU ticks
run.sh read before and after each run, and the proxy's /metrics; medians over runs.
"""
import glob
import json
import os
import statistics

TICKS = os.sysconf("SC_CLK_TCK")
out_dir = "bench/out"  # set by report.py


def runs(prefix):
    """The JSON of each run of `prefix` and its path; a run whose harness wrote nothing (it failed,
    and run.sh went on) is left out."""
    results, files = [], []
    for f in sorted(glob.glob(f"{out_dir}/{prefix}-run*.json")):
        try:
            results.append(json.load(open(f)))
        except ValueError:
            continue
        files.append(f)
    return results, files


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fnum(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def hist(results, name, pct):
    return med([r[name][pct] if pct in r[name] else None for r in results])


def samples(json_file):
    csv = json_file.replace(".json", ".csv")
    rows = []
    if os.path.exists(csv):
        for line in open(csv).read().splitlines()[1:]:
            parts = line.split(",")
            if len(parts) == 5 and all(parts):
                rows.append([float(p) for p in parts])
    return rows


def resources(files):
    peak_rss, threads, fds, cpu, per_stream = [], [], [], [], []
    for f in files:
        rows = samples(f)
        if not rows:
            continue
        peak_rss.append(max(r[1] for r in rows) / 1024)
        threads.append(max(r[2] for r in rows))
        fds.append(max(r[3] for r in rows))
        # The server tree's ticks just before and after the harness ran (run.sh's NAME.ticks);
        # the 0.5 s samples' first and last only when a run has none.
        tf = f.replace(".json", ".ticks")
        if os.path.exists(tf):
            a, b = map(int, open(tf).read().split())
            seconds = (b - a) / TICKS
        else:
            seconds = (rows[-1][4] - rows[0][4]) / TICKS
        cpu.append(seconds)
        completed = json.load(open(f)).get("completed")
        if completed:
            per_stream.append(seconds * 1e6 / completed)
    return med(peak_rss), med(threads), med(fds), med(cpu), med(per_stream)


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pool_counts(f):
    """(opened, reused) upstream connections during the run of `f`: /metrics after it, less before
    it when run.sh kept that (NAME.metrics0.txt)."""
    m = f.replace(".json", ".metrics.txt")
    if not os.path.exists(m):
        return None
    text = open(m).read()
    opened = metric(text, "streamproxy_upstream_connections_opened_total")
    reused = metric(text, "streamproxy_upstream_connections_reused_total")
    m0 = f.replace(".json", ".metrics0.txt")
    if os.path.exists(m0):
        before = open(m0).read()
        opened -= metric(before, "streamproxy_upstream_connections_opened_total")
        reused -= metric(before, "streamproxy_upstream_connections_reused_total")
    return opened, reused


def reuse(files):
    ratios = []
    for f in files:
        counts = pool_counts(f)
        if counts and sum(counts):
            ratios.append(counts[1] / sum(counts))
    return med(ratios)
