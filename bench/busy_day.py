#!/usr/bin/env python3
"""A busy day: single-point posts to a stream that already holds 80,000
points today (a point a second), as a sensor posting live would.

For each fedwatt binary given (to compare two builds), a node on a fresh
SQLite store is loaded with the 80,000 points in packs of 10,000, then
takes POSTS single-point posts, each later than the last, one at a time.
Printed per binary: bytes written to disk (`/proc/PID/io`) and CPU per
post, and posts per second.

    bench/busy_day.py                                   # target/release/fedwatt
    bench/busy_day.py old=/tmp/fedwatt-old new=target/release/fedwatt
"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

PORT = 18195
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
LOADED = 80_000
POSTS = 1_000


def run(label, binary):
    work = tempfile.mkdtemp(prefix="fedwatt-busy-day-")
    token = subprocess.check_output(
        [binary, "token", "create", "--data-dir", work, "--name", "bench", "--scope", "write"]
    ).decode().strip()
    node = subprocess.Popen(
        [binary, "serve", "--data-dir", work, "--listen", f"127.0.0.1:{PORT}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        conn = connect()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/senml+json"}

        def post(records):
            conn.request("POST", "/api/v1/data", json.dumps(records), headers)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        for k in range(0, LOADED, 10_000):
            post([{"n": "busy", "t": T0 + k + j, "v": j % 100} for j in range(10_000)])
        bytes0, cpu0, start = written_bytes(node.pid), cpu_seconds(node.pid), time.time()
        for i in range(POSTS):
            post([{"n": "busy", "t": T0 + LOADED + i, "v": i}])
        seconds = time.time() - start
        per_post_kb = (written_bytes(node.pid) - bytes0) / POSTS / 1024
        per_post_ms = (cpu_seconds(node.pid) - cpu0) / POSTS * 1000
        print(json.dumps({
            "binary": label,
            "kb_written_per_post": round(per_post_kb, 1),
            "cpu_ms_per_post": round(per_post_ms, 2),
            "posts_per_s": round(POSTS / seconds),
        }))
    finally:
        node.terminate()
        node.wait()
        subprocess.run(["rm", "-rf", work], check=True)


def connect():
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return conn
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no node on 127.0.0.1:{PORT}")


def written_bytes(pid):
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("write_bytes"):
            return int(line.split()[1])
    raise SystemExit("no write_bytes in /proc/PID/io")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binaries = sys.argv[1:] or ["target/release/fedwatt"]
    for arg in binaries:
        label, _, binary = arg.rpartition("=")
        run(label or binary, binary)


if __name__ == "__main__":
    main()
