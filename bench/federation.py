#!/usr/bin/env python3
"""Federation benchmark: records from node A's store to node B's store,
across two Prosody servers federating by s2s (deploy/dev/xmpp).

Measured:
  throughput   records/s from the first ingest at A until B's store holds
               them all, for packs of 1, 100 and 10,000 records (B subscribed
               with SenML CBOR, as fedwatt peers negotiate), with the CPU time
               of each node and each Prosody over that span
  latency      single-record pushes at RATE/s for SECONDS (posted by two
               clients taking turns on one schedule): for each record,
               the time from its ingest at A (its own timestamp) to its commit
               at B (B's audit trail), p50/p99/max

Run by bench/federation.sh, which builds fedwatt and starts everything.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

STREAM = "urn:dev:prm:30001610071843_consumption/power/active/raw"
# The same meter's production, which nobody subscribed to: A's ingest alone.
ALONE = "urn:dev:prm:30001610071843_production/power/active/raw"
# A meter's spacing: one point every 15 minutes.
STEP = 900
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Node:
    def __init__(self, name, port, token, pid, data_dir, fedwatt):
        self.name, self.port, self.token, self.pid = name, port, token, pid
        self.data_dir, self.fedwatt = data_dir, fedwatt
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def request(self, method, path, body=None, content_type=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in range(3):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port)
        raise RuntimeError(f"{self.name}: no answer")

    def post(self, pack):
        status, body = self.request("POST", "/api/v1/data", json.dumps(pack).encode(),
                                    "application/senml+json")
        if status != 200:
            raise RuntimeError(f"{self.name}: {status} {body[:200]}")

    def count(self):
        status, body = self.request("GET", "/api/v1/streams/" + urllib.parse.quote(STREAM, safe=""))
        return json.loads(body)["count"] if status == 200 else 0

    def audit(self, first):
        out = subprocess.run([self.fedwatt, "--data-dir", self.data_dir, "audit", "show", "--json",
                              "--from", str(first), "--limit", "10000000"],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines()]


def post_packs(a, stream, pack_size, packs, t0):
    """Posts `packs` packs of `pack_size` records of `stream` to A, from 2
    threads, each on its own connection."""

    def writer(k):
        node = Node(a.name, a.port, a.token, a.pid, a.data_dir, a.fedwatt)
        for i in range(k, packs, 2):
            base = t0 + i * pack_size * STEP
            pack = [{"bn": stream, "bt": base, "bu": "W", "t": 0, "v": 0}]
            pack += [{"t": j * STEP, "v": j % 1000} for j in range(1, pack_size)]
            node.post(pack)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def throughput(a, b, pack_size, total, t0, prosody):
    """Posts `total` records in packs of `pack_size`; waits until B holds
    them; returns records/s and CPU seconds per process.

    Node A's CPU includes its HTTP ingest of every pack. To tell the
    federation's part, the same packs are first posted to a stream nobody
    subscribed to: A's CPU for that ingest alone is reported, and taken off
    A's total as `node A, federation`."""
    packs = total // pack_size
    cpu_a = cpu_seconds(a.pid)
    post_packs(a, ALONE, pack_size, packs, t0)
    ingest_alone = round(cpu_seconds(a.pid) - cpu_a, 2)

    start_count = b.count()
    pids = {"node A": a.pid, "node B": b.pid, "Prosody a": prosody["a"], "Prosody b": prosody["b"]}
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    started = time.perf_counter()
    post_packs(a, STREAM, pack_size, packs, t0)
    posted = time.perf_counter()
    while b.count() < start_count + packs * pack_size:
        time.sleep(0.01)
        if time.perf_counter() - started > 600:
            raise RuntimeError("B did not receive everything within 10 minutes")
    elapsed = time.perf_counter() - started
    cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
    cpu["node A, ingest alone"] = ingest_alone
    cpu["node A, federation"] = round(cpu["node A"] - ingest_alone, 2)
    return {
        "pack": pack_size,
        "records": packs * pack_size,
        "seconds": round(elapsed, 3),
        "ingest_seconds_at_a": round(posted - started, 3),
        "records_per_s": round(packs * pack_size / elapsed),
        # One push carries at most 2,000 records (store::PUSH_RECORDS).
        "pushes_per_s": round(packs * -(-pack_size // 2000) / elapsed, 1),
        "cpu_seconds": cpu,
    }


def latency(a, b, rate, seconds, t0, prosody):
    """Single-record packs at `rate`/s, 15 minutes apart in the stream's
    time; the instant each was posted is noted, and B's audit trail tells
    when it was stored there (its entry names the record's time)."""
    first_entry = len(b.audit(1)) + 1
    pids = {"node A": a.pid, "node B": b.pid, "Prosody a": prosody["a"], "Prosody b": prosody["b"]}
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    start_count = b.count()
    n = rate * seconds
    begin = time.time() + 0.1
    posted = {}

    # Two clients on their own connections, taking turns on one schedule,
    # as many meters would: one slow answer does not hold back the next
    # record's post.
    def client(k):
        node = Node(a.name, a.port, a.token, a.pid, a.data_dir, a.fedwatt)
        for i in range(k, n, 2):
            pause = begin + i / rate - time.time()
            if pause > 0:
                time.sleep(pause)
            t = t0 + i * STEP
            posted[t * 1_000_000] = time.time()
            node.post([{"n": STREAM, "u": "W", "t": t, "v": i}])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_span = time.time() - begin
    while b.count() < start_count + n:
        time.sleep(0.01)
    cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
    delays = []
    for e in b.audit(first_entry):
        if e["kind"] != "received":
            continue
        d = json.loads(e["detail"])
        if d.get("records") == 1 and d.get("from") in posted:
            delays.append(e["time"] / 1000 - posted[d["from"]] * 1000)
    delays.sort()
    q = lambda p: round(delays[min(len(delays) - 1, int(p * len(delays)))], 2)
    slow = sum(1 for d in delays if d > 1000)
    return {
        "rate": rate,
        "pushes": len(delays),
        "achieved_rate": round(n / sent_span, 1),
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "max_ms": round(delays[-1], 2),
        "over_1s": slow,
        "cpu_seconds": cpu,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="port,token,pid,data_dir of node A")
    p.add_argument("--b", required=True, help="port,token,pid,data_dir of node B")
    p.add_argument("--fedwatt", required=True)
    p.add_argument("--prosody-a", type=int, required=True)
    p.add_argument("--prosody-b", type=int, required=True)
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the default volumes")
    p.add_argument("--phases", default="throughput,latency",
                   help="which measures to run, comma-separated (default: both)")
    args = p.parse_args()

    def node(name, spec):
        port, token, pid, data_dir = spec.split(",")
        return Node(name, int(port), token, int(pid), data_dir, args.fedwatt)

    a, b = node("A", args.a), node("B", args.b)
    prosody = {"a": args.prosody_a, "b": args.prosody_b}
    # Absolute SenML times start at 2**28 s; below, they are relative to now.
    t0 = 300_000_000
    phases = set(args.phases.split(","))
    for pack, total in ((1, 5_000), (100, 200_000), (10_000, 2_000_000)):
        if "throughput" not in phases:
            break
        total = max(pack, int(total * args.scale) // pack * pack)
        r = throughput(a, b, pack, total, t0, prosody)
        t0 += (total + 1000) * STEP
        print(json.dumps({"throughput": r}), flush=True)
    if "latency" not in phases:
        return
    lat = latency(a, b, args.rate, max(1, int(args.seconds * args.scale)), t0, prosody)
    print(json.dumps({"latency": lat}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
