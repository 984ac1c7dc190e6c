#!/usr/bin/env python3
"""Side-by-side store benchmark: fedwatt (SQLite, and PostgreSQL if asked)
against VictoriaMetrics and InfluxDB 1.x, loading and querying the same
data over HTTP on loopback.

Dataset: STREAMS streams x DAYS days of 10-minute points (200 x 365 =
10,512,000 points), values a deterministic household-like load in W.

Measured, per system:
  ingest   points/s over HTTP, batched packs, CLIENTS concurrent clients
  (a)      one stream, one year of raw points
  (b)      one stream, one year of daily means
  (c)      hour-of-day profile (mean) of all streams over the year
  RSS      idle, and peak during ingest (VmHWM)
  disk     bytes on disk per point after the ingest: the data directory
           (VictoriaMetrics' after a forced flush), or the database's size
           for PostgreSQL

Run by bench/store.sh, which installs and starts the peers.
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

START = 1704067200  # 2024-01-01T00:00:00Z
STEP = 600


def value(stream, t):
    """A household-like load in W: daily shape, per-stream scale, noise."""
    hour = (t % 86400) / 3600
    base = 300 + 40 * (stream % 17)
    shape = 1 + 0.8 * math.sin((hour - 7) / 24 * 2 * math.pi) + (0.9 if 18 <= hour < 22 else 0)
    noise = ((t // STEP * 2654435761 + stream * 40503) % 1000) / 1000
    return round(base * shape + 100 * noise, 1)


def stream_name(s):
    return f"urn:dev:prm:3000161007{s:04d}_consumption/power/active/raw"


def chunks(args):
    """(streams, t0, t1) chunks: PACK_STREAMS streams x PACK_DAYS days."""
    end = START + args.days * 86400
    for t0 in range(START, end, args.pack_days * 86400):
        t1 = min(end, t0 + args.pack_days * 86400)
        for s0 in range(0, args.streams, args.pack_streams):
            yield list(range(s0, min(args.streams, s0 + args.pack_streams))), t0, t1


def senml_pack(streams, t0, t1):
    parts = []
    for s in streams:
        first = True
        for t in range(t0, t1, STEP):
            if first:
                parts.append('{"bn":"%s","bt":%d,"bu":"W","v":%s}' % (stream_name(s), t0, value(s, t)))
                first = False
            else:
                parts.append('{"t":%d,"v":%s}' % (t - t0, value(s, t)))
    return ("[" + ",".join(parts) + "]").encode()


def line_protocol(streams, t0, t1):
    lines = []
    for s in streams:
        for t in range(t0, t1, STEP):
            lines.append("power,stream=s%04d v=%s %d" % (s, value(s, t), t))
    return ("\n".join(lines) + "\n").encode()


def post_all(host, port, path, headers, bodies, clients):
    """POSTs every body, CLIENTS at a time, one connection per client."""
    def worker(my):
        conn = http.client.HTTPConnection(host, port, timeout=600)
        for body in my:
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.status >= 300:
                raise SystemExit(f"POST {path}: {r.status} {data[:300]!r}")
        conn.close()
    shares = [bodies[i::clients] for i in range(clients)]
    with cf.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, shares))


def get(host, port, path, headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=600)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise SystemExit(f"GET {path}: {r.status} {data[:300]!r}")
    return data


def timed(runs, f):
    """Median wall time of f() in ms, and its last result."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("system", choices=["fedwatt", "fedwatt-postgres", "victoriametrics", "influxdb"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="server process, for RSS")
    p.add_argument("--token", help="fedwatt write+read token")
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--pack-streams", type=int, default=10)
    p.add_argument("--pack-days", type=int, default=7)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tz", default="UTC")
    p.add_argument("--settle", type=float, default=0, help="seconds to wait after ingest before querying")
    p.add_argument("--data-dir", help="the system's data directory, for its bytes on disk")
    p.add_argument("--pg-url", help="the PostgreSQL database fedwatt writes to, for its size")
    args = p.parse_args()

    fedwatt = args.system.startswith("fedwatt")
    encode = senml_pack if fedwatt else line_protocol
    bodies = [encode(*c) for c in chunks(args)]
    points = args.streams * args.days * 86400 // STEP
    idle = rss(args.pid, "VmRSS")

    if fedwatt:
        path, headers = "/api/v1/data", {"Content-Type": "application/senml+json", "Authorization": f"Bearer {args.token}"}
    elif args.system == "victoriametrics":
        path, headers = "/write?precision=s", {}
    else:
        path, headers = "/write?db=bench&precision=s", {}
    t = time.perf_counter()
    post_all(args.host, args.port, path, headers, bodies, args.clients)
    ingest_s = time.perf_counter() - t
    peak = rss(args.pid, "VmHWM")
    del bodies
    time.sleep(args.settle)
    if args.system == "victoriametrics":
        get(args.host, args.port, "/internal/force_flush")
    disk = disk_bytes(args)

    h, port = args.host, args.port
    year = (START, START + args.days * 86400)
    one = stream_name(0)
    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    q = urllib.parse.quote
    if fedwatt:
        a = lambda: get(h, port, f"/api/v1/records?stream={q(one)}&from={year[0]}&to={year[1]}&compact=true", auth)
        b = lambda: get(h, port, f"/api/v1/aggregate?stream={q(one)}&from={year[0]}&to={year[1]}&every=P1D&fn=mean&tz={args.tz}", auth)
        all_streams = "&".join("stream=" + q(stream_name(s)) for s in range(args.streams))
        c = lambda: get(h, port, f"/api/v1/profile?{all_streams}&from={year[0]}&to={year[1]}&by=hour-of-day&fn=mean&tz={args.tz}", auth)
        count_a = lambda out: len(json.loads(out))
        count_b = lambda out: len(json.loads(out)["buckets"])
        count_c = lambda out: sum(len(s["values"]["mean"]) for s in json.loads(out)["streams"])
    elif args.system == "victoriametrics":
        # Force every sample through (no de-duplication, no staleness gaps).
        a = lambda: get(h, port, "/api/v1/export?" + urllib.parse.urlencode({"match[]": 'power_v{stream="s0000"}', "start": year[0], "end": year[1] - 1}))
        b = lambda: get(h, port, "/api/v1/query_range?" + urllib.parse.urlencode({"query": 'avg_over_time(power_v{stream="s0000"}[1d])', "start": year[0] + 86400, "end": year[1], "step": "1d"}))
        # Hourly means of every stream, folded by hour of day in the database.
        c = lambda: get(h, port, "/api/v1/query?" + urllib.parse.urlencode({"query": 'avg by (stream) (avg_over_time(power_v[1y]))', "time": year[1]})) and fold_vm(h, port, year, args.streams)
        count_a = lambda out: sum(len(json.loads(line)["values"]) for line in out.splitlines())
        count_b = lambda out: len(json.loads(out)["data"]["result"][0]["values"])
        count_c = lambda out: out
    else:
        iq = lambda query: get(h, port, "/query?" + urllib.parse.urlencode({"db": "bench", "epoch": "s", "q": query}))
        a = lambda: iq(f"SELECT v FROM power WHERE stream='s0000' AND time >= {year[0]}s AND time < {year[1]}s")
        b = lambda: iq(f"SELECT mean(v) FROM power WHERE stream='s0000' AND time >= {year[0]}s AND time < {year[1]}s GROUP BY time(1d)")
        c = lambda: fold_influx(iq, year)
        count_a = lambda out: len(json.loads(out)["results"][0]["series"][0]["values"])
        count_b = lambda out: len(json.loads(out)["results"][0]["series"][0]["values"])
        count_c = lambda out: out

    ms_a, out_a = timed(args.runs, a)
    ms_b, out_b = timed(args.runs, b)
    ms_c, out_c = timed(max(3, args.runs // 2), c)
    print(json.dumps({
        "system": args.system,
        "points": points,
        "ingest_s": round(ingest_s, 3),
        "ingest_points_per_s": round(points / ingest_s),
        "a_ms": round(ms_a, 2), "a_points": count_a(out_a),
        "b_ms": round(ms_b, 2), "b_buckets": count_b(out_b),
        "c_ms": round(ms_c, 2), "c_values": count_c(out_c),
        "rss_idle_mib": round(idle, 1),
        "rss_peak_ingest_mib": round(peak, 1),
        "disk_bytes": disk,
        "disk_bytes_per_point": round(disk / points, 2) if disk else None,
    }))


def disk_bytes(args):
    """Bytes the stored points take: the database's size on PostgreSQL,
    else every file under the data directory."""
    if args.pg_url:
        out = subprocess.run(["psql", "-tAq", args.pg_url, "-c", "SELECT pg_database_size(current_database())"],
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())
    if not args.data_dir:
        return None
    total = 0
    for root, _, files in os.walk(args.data_dir):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except FileNotFoundError:
                pass
    return total


def fold_vm(h, port, year, streams):
    """Hour-of-day profile with VictoriaMetrics: hourly means of every
    stream over the year, grouped by hour of the day in MetricsQL."""
    # MetricsQL has no "group by hour of day" over a range: ask for the
    # hourly means of every stream and fold them here.
    out = get(h, port, "/api/v1/query_range?" + urllib.parse.urlencode({
        "query": "avg_over_time(power_v[1h])", "start": year[0] + 3600, "end": year[1], "step": "1h"}))
    sums = {}
    for series in json.loads(out)["data"]["result"]:
        acc = sums.setdefault(series["metric"]["stream"], [[0.0, 0] for _ in range(24)])
        for t, v in series["values"]:
            slot = acc[((int(t) - 3600) % 86400) // 3600]
            slot[0] += float(v)
            slot[1] += 1
    return sum(24 for _ in sums)


def fold_influx(iq, year):
    """Hour-of-day profile with InfluxDB 1.x: hourly means of every stream
    (GROUP BY time(1h), stream), folded by hour of day here."""
    out = iq(f"SELECT mean(v) FROM power WHERE time >= {year[0]}s AND time < {year[1]}s GROUP BY time(1h), stream")
    n = 0
    for series in json.loads(out)["results"][0]["series"]:
        acc = [[0.0, 0] for _ in range(24)]
        for t, v in series["values"]:
            if v is not None:
                slot = acc[(t % 86400) // 3600]
                slot[0] += v
                slot[1] += 1
        n += 24
    return n


if __name__ == "__main__":
    main()
