# Shared by the benchmarks that run two federating nodes (federation.sh,
# ingest_under_push.sh): source it, then call its functions.

# node_config FILE DATA_DIR PORT JID PASSWORD XMPP_ADDRESS CA_FILE: writes the
# configuration of a node on SQLite in DATA_DIR, serving HTTP on
# 127.0.0.1:PORT and federating as JID through the XMPP server at
# XMPP_ADDRESS, whose certificate CA_FILE signed.
node_config() {
  cat >"$1" <<TOML
data_dir = "$2"
[http]
listen = "127.0.0.1:$3"
[xmpp]
jid = "$4"
password = "$5"
address = "$6"
ca_file = "$7"
TOML
}

# wait_online PORT LOG: waits up to 20 s for the node serving HTTP on
# 127.0.0.1:PORT to be online on XMPP; fails, naming LOG, if it is not.
wait_online() {
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$1/healthz" | grep -q '"online":true' && return 0
    sleep 0.1
  done
  echo "the node on port $1 did not come online; see $2" >&2
  return 1
}
