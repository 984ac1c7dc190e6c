#!/usr/bin/env bash
# Federation benchmark: node A pushes to node B across two stock Prosody
# 0.12 servers federating by s2s on loopback (deploy/dev/xmpp, installed if
# missing). Prints one JSON line per measure and a Markdown table for
# bench/RESULTS.md (see bench/federation.py for what is measured).
#
#   bench/federation.sh                     # full volumes
#   bench/federation.sh --scale 0.1         # a quick run
#   bench/federation.sh --phases latency    # single-record pushes only
#   BENCH_DIR=/dev/shm bench/federation.sh  # the nodes' stores in memory,
#                                           # to tell what the disk costs
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/nodes.sh

echo "== building fedwatt" >&2
cargo build --release --locked -p fedwatt >&2
fedwatt=${CARGO_TARGET_DIR:-$PWD/target}/release/fedwatt
# Fresh servers: what earlier runs left in their memory (offline messages,
# sessions) would weigh on this one's figures.
deploy/dev/xmpp stop >&2 || true
xmpp_dir=$(deploy/dev/xmpp start)

work=$(mktemp -d ${BENCH_DIR:-/tmp}/fedwatt-fedbench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The benchmark restarts node A: its process is no longer one of $pids.
  pkill -f "$work/a.toml serve" 2>/dev/null || true
  wait 2>/dev/null || true
  # The nodes' logs and audit trails stay for a look.
  rm -rf /tmp/fedwatt-fedbench-last
  mv "$work" /tmp/fedwatt-fedbench-last
}
trap cleanup EXIT

run=$$
declare -A port=([a]=18281 [b]=18282) address=([a]=127.0.0.2:5222 [b]=127.0.0.3:5222)
declare -A token pid
for d in a b; do
  user="bench-$run"
  deploy/dev/xmpp adduser "$d" "$user" "$user-pw"
  node_config "$work/$d.toml" "$work/$d" "${port[$d]}" "$user@$d.fedwatt.test/node" \
    "$user-pw" "${address[$d]}" "$xmpp_dir/ca.pem"
  token[$d]=$($fedwatt --config "$work/$d.toml" token create --name bench --scope admin)
  $fedwatt --config "$work/$d.toml" serve 2>"$work/$d.log" &
  pid[$d]=$!; pids+=("${pid[$d]}")
done
for d in a b; do
  wait_online "${port[$d]}" "$work/$d.log"
done
stream="urn:dev:prm:30001610071843_consumption/power/active/raw"
curl -fs -XPOST -H "Authorization: Bearer ${token[a]}" -H "Content-Type: application/senml+json" \
  --data "[{\"n\":\"$stream\",\"u\":\"W\",\"t\":1800000000,\"v\":1}]" "http://127.0.0.1:${port[a]}/api/v1/data" >/dev/null
$fedwatt --config "$work/a.toml" grant add --to "bench-$run@b.fedwatt.test" --streams "$stream" >&2
$fedwatt --config "$work/b.toml" peer subscribe "bench-$run@a.fedwatt.test/node" "$stream" >&2

results="$work/results.jsonl"
python3 bench/federation.py --fedwatt "$fedwatt" --work "$work" \
  --a "${port[a]},${token[a]},${pid[a]},$work/a.toml" --b "${port[b]},${token[b]},${pid[b]},$work/b.toml" \
  --prosody-a "$(cat "$xmpp_dir/a/prosody.pid")" --prosody-b "$(cat "$xmpp_dir/b/prosody.pid")" "$@" | tee "$results"

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("| pack | records | records/s A→B | pushes/s | CPU s: node A / Prosody a / Prosody b / node B | A's HTTP ingest of the same packs: s, CPU s |")
print("|---:|---:|---:|---:|---|---|")
for r in (r["throughput"] for r in rows if "throughput" in r):
    c, h = r["cpu_seconds"], r["http_ingest_at_a"]
    print(f"| {r['pack']:,} | {r['records']:,} | {r['records_per_s']:,} | {r['pushes_per_s']} | "
          f"{c['node A']} / {c['Prosody a']} / {c['Prosody b']} / {c['node B']} (over {r['seconds']} s) | "
          f"{h['seconds']}, {h['cpu_seconds']} |")
for l in (r["latency"] for r in rows if "latency" in r):
    c = l["cpu_seconds"]
    print()
    print(f"single-record pushes at {l['achieved_rate']}/s ({l['pushes']} pushes), ingest at A to commit at B: "
          f"p50 {l['p50_ms']} ms, p99 {l['p99_ms']} ms, max {l['max_ms']} ms; "
          f"CPU s node A {c['node A']} (its HTTP ingest alone {c['node A, HTTP ingest alone']}), "
          f"Prosody a {c['Prosody a']}, Prosody b {c['Prosody b']}, node B {c['node B']}")
PY
