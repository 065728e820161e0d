"""Counts W7's upstream fetches where they arrive: the lines nginx logged (bench/nginx/delay.conf)
from byte OFFSET of its log on. Prints `fetches max_same_url`: how many requests the origin
answered, and the most requests for one URL that it had in flight at any moment (each line
gives the end time and the duration, to the millisecond, so each interval is narrowed by 2 ms
to keep two fetches that follow each other from counting as overlapping).

    python3 bench/w7_fetches.py LOG OFFSET
"""
import collections
import sys

log, offset = sys.argv[1], int(sys.argv[2])
with open(log, "rb") as f:
    f.seek(offset)
    lines = f.read().decode().splitlines()
edges = collections.defaultdict(list)
for line in lines:
    end, took, _status, url = line.split()
    end, took = float(end), float(took)
    start = end - took
    if took > 0.004:
        start, end = start + 0.002, end - 0.002
    edges[url] += [(start, 1), (end, -1)]


def most_at_once(points):
    now = most = 0
    for _, step in sorted(points):
        now += step
        most = max(most, now)
    return most


print(len(lines), max(map(most_at_once, edges.values()), default=0), most_at_once([p for ps in edges.values() for p in ps]))
