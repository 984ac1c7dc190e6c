#!/usr/bin/env python3
"""Single-point ingest latency at node A (SQLite) while A's outbox pushes
10,000-record packs to a subscriber, node B, across two Prosody servers.

One run measures one fedwatt binary, already started by
bench/ingest_under_push.sh (node A with B subscribed to LOADED), in phases
of SECONDS each:

  alone         the probe alone: single points posted to PROBED (a stream
                nobody subscribed to) at PROBE_RATE/s, each request timed
  unsubscribed  the probe, while a loader posts PACK-record packs at
                PACK_RATE/s to a stream nobody subscribed to: what ingest
                costs the probe, without the federation
  subscribed    the probe, while the loader posts the same packs to
                LOADED, which B subscribed to: each pack queues PACK / 2,000
                pushes, so A's outbox is always busy

For each phase: the probe's p50/p99/max latency, the packs/s the loader
achieved, the pushes/s A sent and the receipts/s it recorded (its
/metrics), and the outbox's mean length (its /healthz). Prints one JSON
line per phase.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from federation import Node, cpu_seconds, pack  # noqa: E402

LOADED = "urn:dev:prm:30001610071843_consumption/power/active/raw"
UNSUBSCRIBED = "urn:dev:prm:30001610071843_production/power/active/raw"
PROBED = "urn:dev:prm:30001610071844_consumption/power/active/raw"
# The loader's points are a second apart: a 10,000-record pack spans 2.8 h.
STEP = 1


def metric(a, name):
    status, body = a.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics: {status}")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def outbox(a):
    status, body = a.request("GET", "/healthz")
    if status != 200:
        return None

    def find(v):
        if isinstance(v, dict):
            if "outbox" in v:
                return v["outbox"]
            for w in v.values():
                found = find(w)
                if found is not None:
                    return found
        return None

    return find(json.loads(body))


class Clock:
    """Times on a stream, each later than the last, across phases."""

    def __init__(self, start):
        self.next = start

    def take(self, n):
        t = self.next
        self.next += n * STEP
        return t


def paced(rate, until):
    """Yields 0, 1, 2… at `rate`/s until `until`; a turn that takes longer
    than its slot delays the next (the achieved rate says so)."""
    start = time.perf_counter()
    n = 0
    while True:
        due = start + n / rate
        now = time.perf_counter()
        if now >= until:
            return
        if due > now:
            time.sleep(min(due - now, until - now))
            continue
        yield n
        n += 1


def load(a, stream, size, rate, until, clock, done):
    """Posts `size`-record packs to `stream` at `rate`/s until `until`, and
    appends the count of packs posted to `done`."""
    node = a.client()
    posted = 0
    for _ in paced(rate, until):
        node.post(pack(stream, clock.take(size), size))
        posted += 1
    done.append(posted)


def probe(a, rate, until, clock):
    """Posts one point at a time to PROBED at `rate`/s until `until`;
    returns each request's latency, in ms."""
    node = a.client()
    latencies = []
    for n in paced(rate, until):
        body = [{"n": PROBED, "u": "W", "t": clock.take(1), "v": n % 1000}]
        sent = time.perf_counter()
        node.post(body)
        latencies.append((time.perf_counter() - sent) * 1000)
    return latencies


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return round(sorted_values[k], 2)


def phase(args, a, name, loaded, clocks):
    sent0 = metric(a, "fedwatt_pushes_sent_total")
    receipts0 = metric(a, "fedwatt_push_receipts_total")
    cpu0 = cpu_seconds(a.pid)
    started = time.perf_counter()
    until = started + args.seconds
    done = []
    loader = None
    if loaded is not None:
        loader = threading.Thread(
            target=load, args=(a, loaded, args.pack, args.pack_rate, until, clocks[loaded], done))
        loader.start()
    # The outbox's length, sampled every half second on a connection of its own.
    lengths = []
    stop_sampling = threading.Event()

    def sample():
        node = a.client()
        while not stop_sampling.wait(0.5):
            n = outbox(node)
            if n is not None:
                lengths.append(n)

    sampler = threading.Thread(target=sample)
    sampler.start()
    latencies = probe(a, args.probe_rate, until, clocks[PROBED])
    if loader is not None:
        loader.join()
    stop_sampling.set()
    sampler.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "binary": args.label,
        "phase": name,
        "seconds": round(seconds, 1),
        "probe": {
            "requests": len(latencies),
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": round(latencies[-1], 2) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "loader": None if loaded is None else {
            "stream": "subscribed" if loaded == LOADED else "unsubscribed",
            "pack": args.pack,
            "packs": done[0] if done else 0,
            "packs_per_s": round((done[0] if done else 0) / seconds, 2),
        },
        "pushes_per_s": round((metric(a, "fedwatt_pushes_sent_total") - sent0) / seconds, 2),
        "receipts_per_s": round((metric(a, "fedwatt_push_receipts_total") - receipts0) / seconds, 2),
        "outbox_mean": round(statistics.fmean(lengths), 1) if lengths else None,
        "cpu_seconds_node_a": round(cpu_seconds(a.pid) - cpu0, 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", required=True, help="the binary's name in the results")
    p.add_argument("--fedwatt", required=True)
    p.add_argument("--a", required=True, help="PORT,TOKEN,PID,CONFIG of node A")
    p.add_argument("--seconds", type=float, default=30, help="each phase's length (default 30)")
    p.add_argument("--pack", type=int, default=10_000, help="records in a loader's pack (default 10,000)")
    p.add_argument("--pack-rate", type=float, default=8, help="loader's packs per second (default 8)")
    p.add_argument("--probe-rate", type=float, default=20, help="probe's points per second (default 20)")
    p.add_argument("--phases", default="alone,unsubscribed,subscribed")
    args = p.parse_args()
    if args.seconds <= 0 or args.seconds > 600:
        sys.exit("--seconds: between 0 and 600")
    port, token, pid, config = args.a.split(",", 3)
    a = Node("A", int(port), token, int(pid), config, args.fedwatt)
    # Each stream's points start where the shell's first point left them.
    clocks = {s: Clock(1_800_000_000 + 1) for s in (LOADED, UNSUBSCRIBED, PROBED)}
    streams = {"alone": None, "unsubscribed": UNSUBSCRIBED, "subscribed": LOADED}
    for name in args.phases.split(","):
        if name not in streams:
            sys.exit(f"--phases: {name!r} is not one of {', '.join(streams)}")
        print(json.dumps(phase(args, a, name, streams[name], clocks)), flush=True)


if __name__ == "__main__":
    main()
