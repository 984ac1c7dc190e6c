#!/usr/bin/env python3
"""Federation benchmark: records from node A's store to node B's store,
across two Prosody servers federating by s2s (deploy/dev/xmpp).

Measured:
  throughput   records/s from A's store to B's store, for packs of 1, 100
               and 10,000 records (B subscribed with SenML CBOR, as fedwatt
               peers negotiate): the records are imported into A's store
               while A is stopped, then the clock runs from A's start until
               B's store holds them all, with the CPU time of each node and
               each Prosody over that span. A's HTTP ingest of the same
               packs is measured on its own beside it.
  latency      single-record pushes at RATE/s for SECONDS (posted by two
               clients taking turns on one schedule): for each record,
               the time from its ingest at A (its own timestamp) to its commit
               at B (B's audit trail), p50/p99/max; A's CPU for the same
               HTTP posts to a stream nobody subscribed to beside it

Run by bench/federation.sh, which builds fedwatt and starts everything.
"""

import argparse
import json
import os
import resource
import signal
import socket
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


def written_bytes(pid):
    """Bytes the process has had written to the disk (`write_bytes`)."""
    with open(f"/proc/{pid}/io") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("write_bytes"))


def own_cpu_seconds():
    """This process's CPU time, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def zombie(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Connection:
    """A keep-alive HTTP/1.1 connection to a node, as lean as a meter's:
    http.client costs about 0.4 ms of CPU per request on this VM, which the
    nodes would feel, since everything shares the 2 cores."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def request(self, method, path, headers, body=b""):
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.receive()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(l.split(":", 1)[1]) for l in lines[1:]
                      if l.lower().startswith("content-length:"))
        while len(rest) < length:
            rest += self.receive()
        return status, rest

    def receive(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        return chunk

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Node:
    def __init__(self, name, port, token, pid, config, fedwatt):
        self.name, self.port, self.token, self.pid = name, port, token, pid
        self.config, self.fedwatt = config, fedwatt
        self.conn = Connection(port)

    def client(self):
        """The same node, on a connection of its own."""
        return Node(self.name, self.port, self.token, self.pid, self.config, self.fedwatt)

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        while os.path.exists(f"/proc/{self.pid}") and not zombie(self.pid):
            time.sleep(0.01)
        self.conn.close()

    def start(self):
        """Starts the node again, logging where it logged before (the
        configuration's name, .log)."""
        log = open(os.path.splitext(self.config)[0] + ".log", "a")
        self.pid = subprocess.Popen([self.fedwatt, "--config", self.config, "serve"],
                                    stdout=subprocess.DEVNULL, stderr=log).pid

    def request(self, method, path, body=b"", content_type=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in range(3):
            try:
                return self.conn.request(method, path, headers, body)
            except OSError:
                # Not up yet, or restarted: a new connection.
                self.conn.close()
                time.sleep(0.05)
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
        out = subprocess.run([self.fedwatt, "--config", self.config, "audit", "show", "--json",
                              "--from", str(first), "--limit", "10000000"],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines()]


def post_packs(a, stream, pack_size, packs, t0):
    """Posts `packs` packs of `pack_size` records of `stream` to A, from 2
    threads, each on its own connection."""

    def writer(k):
        node = a.client()
        for i in range(k, packs, 2):
            node.post(pack(stream, t0 + i * pack_size * STEP, pack_size))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def pack(stream, base, size):
    """`size` records of `stream`, 15 minutes apart from `base`."""
    records = [{"bn": stream, "bt": base, "bu": "W", "t": 0, "v": 0}]
    records += [{"t": j * STEP, "v": j % 1000} for j in range(1, size)]
    return records


def throughput(a, b, pack_size, total, t0, prosody, work):
    """Records from A's store to B's store: with A stopped, `total` records
    are imported into its store in transactions of `pack_size` (each queues
    its pushes, as an HTTP post would); then A starts, and the clock runs
    until B's store holds them all. A's process does nothing but federate
    meanwhile, so its CPU is the federation's alone.

    A's HTTP ingest of the same packs, to a stream nobody subscribed to, is
    measured first, on its own: what A spends when records come over HTTP
    rather than from its store."""
    packs = total // pack_size
    cpu_a = cpu_seconds(a.pid)
    started = time.perf_counter()
    post_packs(a, ALONE, pack_size, packs, t0)
    http_ingest = {"seconds": round(time.perf_counter() - started, 3),
                   "cpu_seconds": round(cpu_seconds(a.pid) - cpu_a, 2)}

    a.stop()
    source = os.path.join(work, f"pack-{pack_size}.json")
    with open(source, "w") as f:
        json.dump(pack(STREAM, t0, packs * pack_size), f)
    started = time.perf_counter()
    subprocess.run([a.fedwatt, "--config", a.config, "import", "senml", "--batch", str(pack_size),
                    source], check=True, capture_output=True)
    imported = round(time.perf_counter() - started, 3)
    os.remove(source)

    start_count = b.count()
    others = {"node B": b.pid, "Prosody a": prosody["a"], "Prosody b": prosody["b"]}
    cpu0 = {k: cpu_seconds(p) for k, p in others.items()}
    started = time.perf_counter()
    a.start()
    while b.count() < start_count + packs * pack_size:
        time.sleep(0.01)
        if time.perf_counter() - started > 600:
            raise RuntimeError("B did not receive everything within 10 minutes")
    elapsed = time.perf_counter() - started
    cpu = {"node A": round(cpu_seconds(a.pid), 2)}
    cpu.update({k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in others.items()})
    return {
        "pack": pack_size,
        "records": packs * pack_size,
        "seconds": round(elapsed, 3),
        "records_per_s": round(packs * pack_size / elapsed),
        # One push carries at most 2,000 records (store::PUSH_RECORDS).
        "pushes_per_s": round(packs * -(-pack_size // 2000) / elapsed, 1),
        "cpu_seconds": cpu,
        "import_seconds": imported,
        "http_ingest_at_a": http_ingest,
    }


def post_at_rate(a, stream, rate, n, t0):
    """Posts `n` single-record packs of `stream` at `rate`/s, by two clients
    on their own connections taking turns on one schedule, as many meters
    would: one slow answer does not hold back the next record's post.
    Returns when each record was posted (by its time in µs) and the rate
    reached."""
    begin = time.time() + 0.1
    posted = {}

    def client(k):
        node = a.client()
        for i in range(k, n, 2):
            pause = begin + i / rate - time.time()
            if pause > 0:
                time.sleep(pause)
            t = t0 + i * STEP
            posted[t * 1_000_000] = time.time()
            node.post([{"n": stream, "u": "W", "t": t, "v": i}])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return posted, round(n / (time.time() - begin), 1)


def latency(a, b, rate, seconds, t0, prosody):
    """Single-record packs at `rate`/s, 15 minutes apart in the stream's
    time; the instant each was posted is noted, and B's audit trail tells
    when it was stored there (its entry names the record's time).

    A's CPU includes its HTTP ingest of each record: the same schedule is
    first posted to a stream nobody subscribed to, and A's CPU for that is
    reported as `node A, HTTP ingest alone`."""
    n = rate * seconds
    cpu_a = cpu_seconds(a.pid)
    post_at_rate(a, ALONE, rate, n, t0)
    ingest_alone = round(cpu_seconds(a.pid) - cpu_a, 2)

    first_entry = len(b.audit(1)) + 1
    pids = {"node A": a.pid, "node B": b.pid, "Prosody a": prosody["a"], "Prosody b": prosody["b"]}
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    start_count = b.count()
    disk0 = {k: written_bytes(pids[k]) for k in ("node A", "node B")}
    client0 = own_cpu_seconds()
    posted, achieved = post_at_rate(a, STREAM, rate, n, t0)
    client = own_cpu_seconds() - client0
    while b.count() < start_count + n:
        time.sleep(0.01)
    cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
    cpu["node A, HTTP ingest alone"] = ingest_alone
    cpu["benchmark client"] = round(client, 2)
    # Measured once B holds every record: A's and B's writes of this phase.
    disk = {k: round((written_bytes(pids[k]) - disk0[k]) / n) for k in disk0}
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
        "achieved_rate": achieved,
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "max_ms": round(delays[-1], 2),
        "over_1s": slow,
        "cpu_seconds": cpu,
        "disk_bytes_per_push": disk,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="port,token,pid,config of node A")
    p.add_argument("--b", required=True, help="port,token,pid,config of node B")
    p.add_argument("--work", required=True, help="a directory for the files to import")
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
        port, token, pid, config = spec.split(",")
        return Node(name, int(port), token, int(pid), config, args.fedwatt)

    a, b = node("A", args.a), node("B", args.b)
    prosody = {"a": args.prosody_a, "b": args.prosody_b}
    # Absolute SenML times start at 2**28 s; below, they are relative to now.
    t0 = 300_000_000
    phases = set(args.phases.split(","))
    for pack, total in ((1, 5_000), (100, 200_000), (10_000, 2_000_000)):
        if "throughput" not in phases:
            break
        total = max(pack, int(total * args.scale) // pack * pack)
        r = throughput(a, b, pack, total, t0, prosody, args.work)
        t0 += (total + 1000) * STEP
        print(json.dumps({"throughput": r}), flush=True)
    if "latency" not in phases:
        return
    lat = latency(a, b, args.rate, max(1, int(args.seconds * args.scale)), t0, prosody)
    print(json.dumps({"latency": lat}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
