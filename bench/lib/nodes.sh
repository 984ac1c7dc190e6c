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
