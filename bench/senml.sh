#!/usr/bin/env bash
# Side by side: `fedwatt senml resolve` against the Python kpn-senml package
# on the same 1,000,000-record load curve (one meter, 30-minute points,
# bn/bt/bu on the first record). Several runs each; medians, ratio and peak
# memory go to bench/RESULTS.md's "senml CLI" section (printed; paste it).
#
#   bench/senml.sh [RUNS]      (default 5)
#
# Also measures `fedwatt senml validate` on a ~1 GB pack (peak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=bench/data
mkdir -p "$data"

cargo build --release --locked --quiet -p fedwatt
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install --quiet kpn-senml==1.0.1

bench/.venv/bin/python bench/measure.py generate "$data/load-curve-1M.json" 1000000
bench/.venv/bin/python bench/measure.py generate "$data/load-curve-1G.json" 45000000

bench/.venv/bin/python bench/measure.py compare "$runs" "$data/load-curve-1M.json" \
  "fedwatt senml resolve=target/release/fedwatt senml resolve --now 1700000000 {file}" \
  "kpn-senml 1.0.1 (Python $(python3 -c 'import platform; print(platform.python_version())'))=bench/.venv/bin/python bench/kpn_resolve.py {file}"

bench/.venv/bin/python bench/measure.py compare 1 "$data/load-curve-1G.json" \
  "fedwatt senml validate (1 GB)=target/release/fedwatt senml validate {file}"
