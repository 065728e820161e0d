"""W7 (issue 12), summarised from the per-run CSV bench/w7-coalesce.sh writes: the median of the
runs of each half (pool settings x coalesce off/on), the ratios on/off, and the issue's targets.
Used by bench/w7-coalesce.sh (prints the table) and bench/report.py (BENCHMARKS.md).

    python3 bench/w7_summary.py W7.csv
"""
import csv
import statistics
import sys

UPSTREAMS = 5
WAVE_S = 0.2


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fnum(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def load(path):
    """{(pool, coalesce): [run, ...]}, each run with its derived rates."""
    halves = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            s = float(row["seconds"])
            completed, workers = int(row["completed"]), int(row["workers"])
            clients = int(row["clients"])
            run = {
                "streams": completed / s,
                "clean": int(row["clean"]) / s,
                "fetches": int(row["fetches"]) / s,
                "perWave": int(row["fetches"]) / s * WAVE_S / (UPSTREAMS * workers),
                "mostSameURL": int(row["max_same_url"]),
                "mostAll": int(row["max_all"]),
                "cpu": int(row["proxy_ticks"]) / int(row["hz"]) * 1e6 / completed if completed else None,
                "p99": float(row["done_p99_ms"]) if row["done_p99_ms"] else None,
                "errors": row["errors"],
                "workers": workers,
                "clients": clients,
                "settings": row["settings"],
            }
            halves.setdefault((row["pool"], row["coalesce"]), []).append(run)
    return halves


def summarise(halves):
    out = {}
    for key, runs in halves.items():
        by_clean = sorted(runs, key=lambda r: r["clean"])
        out[key] = {k: _med([r[k] for r in runs]) for k in ["streams", "clean", "fetches", "perWave", "mostSameURL", "mostAll", "cpu", "p99"]}
        out[key].update(errors=by_clean[len(runs) // 2]["errors"], runs=len(runs), workers=runs[0]["workers"], clients=runs[0]["clients"],
                        settings=runs[0]["settings"])
    return out


def ratio(a, b):
    return None if a is None or not b else a / b


def markdown(summary):
    """The table, the ratios and the targets, as Markdown lines."""
    lines = ["| pool | coalesce | streams/s (every upstream ok) | streams/s (done, failed upstreams included) | upstream fetches/s (origin log) | "
             "fetches per upstream per worker per 200 ms | most fetches at once: of one URL / in all | proxy CPU µs/stream | done p99 | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    pools = sorted({p for p, _ in summary}, key=lambda p: (p != "default", p))
    for pool in pools:
        for mode in ["off", "on"]:
            s = summary.get((pool, mode))
            if s:
                lines.append(f"| {pool} | {mode} | {_fnum(s['clean'])} | {_fnum(s['streams'])} | {_fnum(s['fetches'])} | "
                             f"{_fnum(s['perWave'], 2)} | {_fnum(s['mostSameURL'], 0)} / {_fnum(s['mostAll'], 0)} | {_fnum(s['cpu'], 0)} | "
                             f"{_fnum(s['p99'], 0)} ms | {s['errors'] or 'none'} |")
    lines.append("")
    targets = []
    for pool in pools:
        off, on = summary.get((pool, "off")), summary.get((pool, "on"))
        if not (off and on):
            continue
        r = {k: ratio(on[k], off[k]) for k in ["clean", "fetches", "cpu", "p99"]}
        lines.append(f"{pool} pool, coalesce on / off: streams/s (every upstream ok) {_fnum(r['clean'], 1)}x, "
                     f"upstream fetches/s {_fnum(r['fetches'], 3)}x, proxy CPU per stream {_fnum(r['cpu'], 2)}x, "
                     f"done p99 {_fnum(r['p99'], 2)}x.\n")
        w = on["workers"]
        # A closed loop of C clients whose streams each last at least one 200 ms wave cannot
        # pass C / 0.2 s streams/s, coalesced or not: past a tenth of that uncoalesced, 10x is
        # out of reach by arithmetic, and the figures say so rather than leave the miss bare.
        ceiling = on["clients"] / WAVE_S
        if off["clean"] and 10 * off["clean"] > ceiling:
            lines.append(f"{pool} pool: {on['clients']} clients with streams of at least 200 ms cannot pass "
                         f"{_fnum(ceiling, 0)} streams/s in either half; uncoalesced made {_fnum(off['clean'])}, so 10x "
                         f"({_fnum(10 * off['clean'], 0)}) is beyond that ceiling. What coalescing changes here is the "
                         f"origin's load ({_fnum(off['fetches'], 0)} → {_fnum(on['fetches'])} fetches/s) and the proxy's "
                         f"CPU per stream ({_fnum(off['cpu'], 0)} → {_fnum(on['cpu'], 0)} µs).\n")
        targets.append((f"W7 {pool} pool: coalesce ≥ 10x the streams/s",
                        f"{_fnum(r['clean'], 1)}x ({_fnum(on['clean'])} against {_fnum(off['clean'])})",
                        r["clean"] is not None and r["clean"] >= 10))
        targets.append((f"W7 {pool} pool: ≤ 1 fetch per upstream per worker per 200 ms wave",
                        f"{_fnum(on['perWave'], 2)} per wave; at most {_fnum(on['mostSameURL'], 0)} of one URL at once ({w} workers)",
                        on["perWave"] is not None and on["perWave"] <= 1 and on["mostSameURL"] <= w))
    for pool in pools:
        if (pool, "on") not in summary:
            lines.append(f"{pool} pool: no coalesced half (the binary has no `--coalesce`).\n")
    return lines, targets


if __name__ == "__main__":
    summary = summarise(load(sys.argv[1]))
    lines, targets = markdown(summary)
    print("\n".join(lines))
    for name, measured, met in targets:
        print(f"{name}: {measured}: {'met' if met else 'NOT met'}")
    for (pool, mode), s in sorted(summary.items()):
        print(f"{pool}/{mode} ({s['runs']} runs): {s['settings']}")
