#!/usr/bin/env bash
# Side-by-side store benchmark: fedwatt on SQLite against VictoriaMetrics
# and InfluxDB 1.x (Debian packages, installed if missing), each started on
# loopback with its own data directory, loading and querying the same
# dataset over HTTP (see bench/store.py). Prints one JSON line per system
# and a Markdown table with ratios, to paste into bench/RESULTS.md.
#
#   bench/store.sh                       # 200 streams x 365 days (10.5 M points)
#   bench/store.sh --streams 20 --days 30   # a quick run
#   BENCH_FEDWATT_BIN=/path/to/fedwatt bench/store.sh   # a binary built already
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
command -v influxd >/dev/null || missing+=(influxdb)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

# BENCH_FEDWATT_BIN: a fedwatt built already (else built here, release).
fedwatt=${BENCH_FEDWATT_BIN:-}
if [ -z "$fedwatt" ]; then
  echo "== building fedwatt" >&2
  cargo build --release --locked -p fedwatt >&2
  fedwatt=${CARGO_TARGET_DIR:-target}/release/fedwatt
fi

work=$(mktemp -d /tmp/fedwatt-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_http() { # URL
  for _ in $(seq 1 200); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  exit 1
}

results="$work/results.jsonl"

echo "== fedwatt (SQLite)" >&2
token=$($fedwatt token create --data-dir "$work/fedwatt" --name bench --scope write)
$fedwatt serve --data-dir "$work/fedwatt" --listen 127.0.0.1:18181 2>"$work/fedwatt.log" &
pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18181/healthz
python3 bench/store.py fedwatt --port 18181 --pid "$pid" --token "$token" --data-dir "$work/fedwatt" "$@" | tee -a "$results"
kill "$pid"; wait "$pid" || true

echo "== fedwatt (PostgreSQL, scripts/postgres)" >&2
pg_admin=$(scripts/postgres)
psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS fedwatt_bench" -c "CREATE DATABASE fedwatt_bench"
pg_url="${pg_admin%/*}/fedwatt_bench"
token=$(FEDWATT_DATABASE_URL=$pg_url $fedwatt token create --data-dir "$work/fedwatt-pg" --name bench --scope write)
FEDWATT_DATABASE_URL=$pg_url $fedwatt serve --data-dir "$work/fedwatt-pg" --listen 127.0.0.1:18182 2>"$work/fedwatt-pg.log" &
pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18182/healthz
python3 bench/store.py fedwatt-postgres --port 18182 --pid "$pid" --token "$token" --pg-url "$pg_url" "$@" | tee -a "$results"
kill "$pid"; wait "$pid" || true
psql -q "$pg_admin" -c "DROP DATABASE fedwatt_bench"

echo "== VictoriaMetrics" >&2
victoria-metrics -storageDataPath "$work/vm" -httpListenAddr 127.0.0.1:18428 -retentionPeriod 100y \
  -search.disableCache -search.latencyOffset 0s -loggerLevel ERROR 2>"$work/vm.log" &
pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18428/health
python3 bench/store.py victoriametrics --port 18428 --pid "$pid" --settle 5 --data-dir "$work/vm" "$@" | tee -a "$results"
kill "$pid"; wait "$pid" || true

echo "== InfluxDB" >&2
mkdir -p "$work/influx"
cat >"$work/influx/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:18088"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
  max-series-per-database = 0
  max-values-per-tag = 0
[http]
  bind-address = "127.0.0.1:18086"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
CONF
influxd -config "$work/influx/influxdb.conf" 2>"$work/influx.log" &
pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18086/ping
curl -fs -XPOST http://127.0.0.1:18086/query --data-urlencode "q=CREATE DATABASE bench" >/dev/null
python3 bench/store.py influxdb --port 18086 --pid "$pid" --data-dir "$work/influx" "$@" | tee -a "$results"
kill "$pid"; wait "$pid" || true

python3 - "$results" <<'PY'
import json, sys
rows = {r["system"]: r for r in map(json.loads, open(sys.argv[1]))}
f = rows["fedwatt"]
print()
print("| | fedwatt (SQLite) | VictoriaMetrics | ratio | InfluxDB 1.x | ratio |")
print("|---|---:|---:|---:|---:|---:|")
def line(label, key, fmt, better_high=False):
    cells = [fmt(f[key])]
    for peer in ("victoriametrics", "influxdb"):
        p = rows[peer][key]
        ratio = (f[key] / p) if better_high else (p / f[key])
        cells += [fmt(p), f"{ratio:.1f}x" if ratio >= 0.1 else f"{ratio:.2f}x"]
    print(f"| {label} | " + " | ".join(cells) + " |")
line("ingest, points/s", "ingest_points_per_s", lambda v: f"{v/1e6:.2f} M", better_high=True)
line("(a) one stream, a year of points, ms", "a_ms", lambda v: f"{v:.1f}")
line("(b) one stream, a year of daily means, ms", "b_ms", lambda v: f"{v:.2f}")
line("(c) hour-of-day profile of every stream, ms", "c_ms", lambda v: f"{v:.0f}")
line("RSS idle, MiB", "rss_idle_mib", lambda v: f"{v:.0f}")
line("RSS peak during ingest, MiB", "rss_peak_ingest_mib", lambda v: f"{v:.0f}")
line("bytes on disk per point", "disk_bytes_per_point", lambda v: f"{v:.2f}")
print()
print("ratio: how many times fedwatt is better (faster, or smaller)")
if "fedwatt-postgres" in rows:
    g = rows["fedwatt-postgres"]
    print()
    print(f"fedwatt on PostgreSQL: ingest {g['ingest_points_per_s']/1e6:.2f} M points/s, "
          f"(a) {g['a_ms']:.1f} ms, (b) {g['b_ms']:.2f} ms, (c) {g['c_ms']:.0f} ms, "
          f"node RSS idle {g['rss_idle_mib']:.0f} MiB, peak {g['rss_peak_ingest_mib']:.0f} MiB (the server's own memory not counted), "
          f"{g['disk_bytes_per_point']:.2f} bytes per point (the database's size)")
PY
