#!/usr/bin/env bash
# Ingest under push: single-point HTTP ingest latency (p50/p99) at node A,
# on SQLite, while A's outbox pushes 10,000-record packs to node B across
# two Prosody servers (deploy/dev/xmpp, on loopback), for one or more
# fedwatt binaries side by side in one run (see bench/ingest_under_push.py
# for the phases and what is measured). Prints one JSON line per binary and
# phase, then a Markdown table with each binary's ratio to the first.
#
#   bench/ingest_under_push.sh OLD_BIN NEW_BIN       # two binaries built already
#   bench/ingest_under_push.sh --rev 2858951 --rev HEAD
#                                 # builds each revision with cargo build --release,
#                                 # in a git worktree and target dir of its own
#                                 # under $BENCH_BUILD (default /tmp/fedwatt-bench-build)
#   bench/ingest_under_push.sh --seconds 5 --pack 1000 BIN   # a quick check
#
# A binary may be named LABEL=PATH; otherwise two are "before" and "after",
# and one or more than two are named by their position. Options (passed to
# the .py): --seconds S per phase (30), --pack N records (10,000),
# --pack-rate R packs/s (8), --probe-rate R points/s (20), --phases LIST
# (alone,unsubscribed,subscribed); --rounds N runs every binary N times,
# taking turns (1). BENCH_DIR is where the nodes' stores go (/tmp).
#
# The subscribed phase means something only if A's outbox was busy: its
# "mean outbox" should stay above 0 (raise --pack-rate if it is 0), and
# its loader packs/s should match between the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/nodes.sh
repo=$PWD

py_args=() bins=() revs=() rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) revs+=("$2"); shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds|--pack|--pack-rate|--probe-rate|--phases) py_args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done

build=${BENCH_BUILD:-/tmp/fedwatt-bench-build}
for rev in "${revs[@]}"; do
  commit=$(git rev-parse --short=12 "$rev^{commit}")
  tree="$build/$commit"
  if [ ! -d "$tree" ]; then
    mkdir -p "$build"
    git worktree add --detach "$tree" "$commit" >&2
  fi
  echo "== building $rev ($commit) in $tree" >&2
  (cd "$tree" && CARGO_TARGET_DIR="$tree/target" cargo build --release --locked -p fedwatt >&2)
  bins+=("$rev=$tree/target/release/fedwatt")
done
[ ${#bins[@]} -gt 0 ] || { echo "no binary to measure (see --help)" >&2; exit 2; }

labels=() paths=()
for i in "${!bins[@]}"; do
  spec=${bins[$i]}
  if [[ "$spec" == *=* ]]; then
    label=${spec%%=*} path=${spec#*=}
  elif [ ${#bins[@]} -eq 2 ]; then
    label=$([ "$i" -eq 0 ] && echo before || echo after) path=$spec
  else
    label="binary $((i + 1))" path=$spec
  fi
  [ -x "$path" ] || { echo "$path: not an executable" >&2; exit 2; }
  labels+=("$label") paths+=("$(cd "$(dirname "$path")" && pwd)/$(basename "$path")")
done

work=$(mktemp -d "${BENCH_DIR:-/tmp}/fedwatt-pushbench.XXXXXX")
pids=()
stop_nodes() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_nodes
  # The nodes' logs stay for a look.
  rm -rf /tmp/fedwatt-pushbench-last
  mv "$work" /tmp/fedwatt-pushbench-last
}
trap cleanup EXIT

results="$work/results.jsonl"
stream="urn:dev:prm:30001610071843_consumption/power/active/raw"
declare -A port=([a]=18381 [b]=18382) address=([a]=127.0.0.2:5222 [b]=127.0.0.3:5222)
n=0
for round in $(seq "$rounds"); do
  for i in "${!paths[@]}"; do
    fedwatt=${paths[$i]} label=${labels[$i]}
    n=$((n + 1))
    echo "== $label, round $round: $fedwatt" >&2
    # Fresh servers and accounts for each run: what an earlier run left in
    # the servers' memory (offline messages for its subscriber) would weigh
    # on this one's figures.
    deploy/dev/xmpp stop >&2 || true
    xmpp_dir=$(deploy/dev/xmpp start)
    run="$work/$n"
    mkdir -p "$run"
    user="pushbench-$$-$n"
    declare -A token pid
    for d in a b; do
      deploy/dev/xmpp adduser "$d" "$user" "$user-pw" >&2
      node_config "$run/$d.toml" "$run/$d" "${port[$d]}" "$user@$d.fedwatt.test/node" \
        "$user-pw" "${address[$d]}" "$xmpp_dir/ca.pem"
      token[$d]=$("$fedwatt" --config "$run/$d.toml" token create --name bench --scope admin)
      "$fedwatt" --config "$run/$d.toml" serve 2>"$run/$d.log" &
      pid[$d]=$!; pids+=("${pid[$d]}")
    done
    for d in a b; do
      wait_online "${port[$d]}" "$run/$d.log"
    done
    curl -fs -XPOST -H "Authorization: Bearer ${token[a]}" -H "Content-Type: application/senml+json" \
      --data "[{\"n\":\"$stream\",\"u\":\"W\",\"t\":1800000000,\"v\":1}]" \
      "http://127.0.0.1:${port[a]}/api/v1/data" >/dev/null
    "$fedwatt" --config "$run/a.toml" grant add --to "$user@b.fedwatt.test" --streams "$stream" >&2
    "$fedwatt" --config "$run/b.toml" peer subscribe "$user@a.fedwatt.test/node" "$stream" >&2
    python3 bench/ingest_under_push.py --label "$label" --fedwatt "$fedwatt" \
      --a "${port[a]},${token[a]},${pid[a]},$run/a.toml" ${py_args[@]+"${py_args[@]}"} | tee -a "$results"
    stop_nodes
  done
done
deploy/dev/xmpp stop >&2 || true

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = list(dict.fromkeys(r["binary"] for r in rows))
phases = list(dict.fromkeys(r["phase"] for r in rows))
def median(label, phase, get):
    values = [get(r) for r in rows if r["binary"] == label and r["phase"] == phase and get(r) is not None]
    return statistics.median(values) if values else None
print()
print("| phase | binary | probe p50 ms | probe p99 ms | probe max ms | loader packs/s | pushes/s | receipts/s | mean outbox | p99 vs first |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for phase in phases:
    first = median(labels[0], phase, lambda r: r["probe"]["p99_ms"])
    for label in labels:
        p99 = median(label, phase, lambda r: r["probe"]["p99_ms"])
        packs = median(label, phase, lambda r: r["loader"] and r["loader"]["packs_per_s"])
        ratio = f"{p99 / first:.2f}x" if p99 and first else "–"
        cell = lambda v: "–" if v is None else f"{v:g}"
        print(f"| {phase} | {label} | {cell(median(label, phase, lambda r: r['probe']['p50_ms']))} | {cell(p99)} | "
              f"{cell(median(label, phase, lambda r: r['probe']['max_ms']))} | {cell(packs)} | "
              f"{cell(median(label, phase, lambda r: r['pushes_per_s']))} | "
              f"{cell(median(label, phase, lambda r: r['receipts_per_s']))} | "
              f"{cell(median(label, phase, lambda r: r['outbox_mean']))} | {ratio} |")
PY
