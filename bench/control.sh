#!/usr/bin/env bash
# Control-loop benchmark: N simulated Tasmota plugs on one Mosquitto
# (scripts/mosquitto, installed if missing); a `shed` stimulation for all of
# them; the time until every order is published and until every
# confirmation is recorded (p50/p99), the monitoring messages taken in per
# second, and the node's CPU and RSS. One JSON line; see
# crates/control-mqtt/examples/control_bench.rs.
#
#   bench/control.sh                    # 10,000 plugs, 200,000 power readings
#   bench/control.sh --devices 1000
set -euo pipefail
cd "$(dirname "$0")/.."

devices=10000
monitoring=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) devices=$2; shift 2 ;;
    --monitoring) monitoring=$2; shift 2 ;;
    *) echo "usage: bench/control.sh [--devices N] [--monitoring M]" >&2; exit 2 ;;
  esac
done

echo "== building" >&2
cargo build --release --locked -p fedwatt-control-mqtt --example control_bench >&2
bench=${CARGO_TARGET_DIR:-target}/release/examples/control_bench
# A broker of its own, fresh: nothing queued from an earlier run.
export FEDWATT_MQTT_DIR=/tmp/fedwatt-mqtt-bench FEDWATT_MQTT_PORT=51890
scripts/mosquitto restart >/dev/null
broker=127.0.0.1:$FEDWATT_MQTT_PORT

trap 'scripts/mosquitto stop' EXIT
# The fleet starts the node itself, once the plugs listen.
"$bench" fleet --devices "$devices" --broker "$broker" --monitoring "$monitoring"
