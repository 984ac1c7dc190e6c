#!/usr/bin/env bash
# The web UI in headless Chromium against a real node (release build):
# - the explorer's draw time of one year of 10-minute points (52,560 raw
#   records of one stream), from the parsed response to the drawn chart
#   (performance.now around uPlot's construction and first draw);
# - the same for a year of daily means of 200 streams (73,000 values);
# - the bytes a first visit transfers (compressed, headers included), for
#   the sign-in page and for the explorer with its chart code.
# Several runs each; medians printed for bench/RESULTS.md's "web UI" section.
#
#   bench/ui.sh [RUNS]      (default 5)
#
# The API calls the pages make are timed on their own, against a running
# demo node (any build), by bench/ui_api.mjs: every call 2 times to warm up,
# then 20 times, signed in as alice (a member) or as the operator:
#
#   fedwatt demo --listen 127.0.0.1:8080 &
#   node bench/ui_api.mjs http://127.0.0.1:8080
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

scripts/web
cargo build --release --locked --quiet -p fedwatt
export FEDWATT_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/fedwatt
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
node bench/ui.mjs "$runs"
