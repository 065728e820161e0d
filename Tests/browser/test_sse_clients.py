"""The stream read by a third-party SSE client: sseclient-py over requests (stream=True).

Run by scripts/test-browser.sh, which starts `stream-proxy serve` in demo mode and sets
STREAMPROXY_URL. The demo route has 6 upstreams; upstream 1 serves multi-byte UTF-8 text
(é ☃ 𝄞 日本語 🙂) and upstream 5 is malformed (it ends with an error).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sseclient

BASE = os.environ.get("STREAMPROXY_URL")
if not BASE:
    pytest.skip("STREAMPROXY_URL is not set: run scripts/test-browser.sh", allow_module_level=True)

KINDS = {"dns", "connect", "tls", "timeout", "reset", "protocol", "pool", "shutdown"}


def read_stream(path):
    """Every event sseclient-py dispatches for `path`, as (event, id, data as JSON)."""
    with requests.get(BASE + path, stream=True, timeout=20,
                      headers={"Accept": "text/event-stream"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        client = sseclient.SSEClient(resp)
        return [(e.event, e.id, json.loads(e.data)) for e in client.events()]


@pytest.mark.parametrize("prefix", [7, 64, 1024])
def test_demo_stream_is_whole_and_well_formed(prefix):
    events = read_stream(f"/stream/demo?prefix={prefix}")
    names = [name for name, _, _ in events]

    assert names[0] == "open"
    assert names[-1] == "done" and events[-1][1] == "done"
    assert names.count("open") == 1 and names.count("done") == 1
    assert set(names) <= {"open", "head", "chunk", "end", "error", "done"}, names

    # ids: increasing integers, then "done"
    ids = [int(i) for _, i, _ in events[:-1]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    opened = events[0][2]
    assert opened["route"] == "demo" and opened["prefix"] == prefix
    upstreams = {u["i"]: u["url"] for u in opened["upstreams"]}
    assert sorted(upstreams) == list(range(6))

    # every upstream ends exactly once, with end or error, and nothing of it comes after that
    finished, text, heads = {}, {i: "" for i in upstreams}, {}
    for name, _, d in events[1:-1]:
        i = d["i"]
        assert i in upstreams
        assert i not in finished, f"upstream {i}: {name} after its {finished.get(i)}"
        if name == "head":
            assert i not in heads
            heads[i] = d
        elif name == "chunk":
            assert i in heads, f"upstream {i}: chunk before head"
            text[i] += d["text"]
        elif name in ("end", "error"):
            finished[i] = (name, d)
    assert sorted(finished) == sorted(upstreams)

    errors = {i: d for i, (name, d) in finished.items() if name == "error"}
    ends = {i: d for i, (name, d) in finished.items() if name == "end"}
    assert sorted(errors) == [5]
    assert errors[5]["kind"] in KINDS and errors[5]["url"] == upstreams[5] and errors[5]["message"]

    for i, d in ends.items():
        assert heads[i]["status"] in (200, 404)
        # `bytes` counts what was forwarded: exactly the UTF-8 of the text received
        assert len(text[i].encode("utf-8")) == d["bytes"] <= prefix
        assert "\ufffd" not in text[i]
        # a cut character is dropped, never split: at most 3 bytes short of the prefix
        if d["truncated"]:
            assert d["bytes"] >= prefix - 3

    done = events[-1][2]
    assert done["ok"] == 5 and done["failed"] == 1

    # upstream 1: multi-byte UTF-8 arrives intact
    assert "/utf8/" in upstreams[1]
    if prefix >= 1024:
        for s in ("é", "☃", "𝄞", "日本語", "🙂"):
            assert s in text[1], (s, text[1][:200])


def test_utf8_text_survives_cuts_inside_characters():
    """Prefixes that end inside each byte of é, ☃, 𝄞 and 🙂 of upstream 1's text."""
    events = read_stream("/stream/demo?prefix=1024")
    full = "".join(d["text"] for name, _, d in events if name == "chunk" and d["i"] == 1)
    cuts, offset = [], 0
    for ch in full:
        n = len(ch.encode("utf-8"))
        if n > 1 and ch in "é☃𝄞🙂" and not any(c[1] == ch for c in cuts):
            cuts += [(offset + k, ch) for k in range(1, n)]  # prefix ends after k of n bytes
        offset += n
    assert {ch for _, ch in cuts} == set("é☃𝄞🙂"), full[:100]

    def one(cut):
        prefix, ch = cut
        events = read_stream(f"/stream/demo?prefix={prefix}")
        got = "".join(d["text"] for name, _, d in events if name == "chunk" and d["i"] == 1)
        end = next(d for name, _, d in events if name == "end" and d["i"] == 1)
        return prefix, ch, got, end

    with ThreadPoolExecutor(max_workers=len(cuts)) as pool:
        results = list(pool.map(one, cuts))
    for prefix, ch, got, end in results:
        whole = full.encode("utf-8")[:prefix].decode("utf-8", errors="ignore")
        assert got == whole, (prefix, ch, got[-5:], whole[-5:])
        assert "\ufffd" not in got
        assert len(got.encode("utf-8")) == end["bytes"] < prefix
        assert end["truncated"] is True
