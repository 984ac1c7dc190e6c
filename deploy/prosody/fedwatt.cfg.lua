-- Prosody 0.12 settings for an organisation whose fedwatt node federates.
-- Include from /etc/prosody/prosody.cfg.lua, or merge into it; then create
-- the node's account:
--
--   prosodyctl adduser fedwatt@agency.example
--
-- and give its JID and password to the node's [xmpp] section.

-- Prosody delays small writes by default (Nagle's algorithm), which adds
-- 30 to 80 ms to every push at moderate load. fedwatt pushes are small and
-- latency matters: turn it off.
network_settings = { nagle = false }

modules_enabled = {
  "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
  -- Stream management: the node resumes its session after a network blip.
  "smacks";
  -- Pushes carry a store hint: kept for an offline node, delivered when it
  -- comes back (fedwatt re-sends until a receipt arrives anyway).
  "offline"; "mam";
  "carbons";
}

c2s_require_encryption = true
s2s_require_encryption = true
-- Verify peer servers' certificates. Only a closed test federation with
-- self-signed certificates may set this to false (dialback then).
s2s_secure_auth = true

-- A push carries up to 2,000 records: about 80 kB as SenML XML, 30 kB as
-- SenML CBOR. The defaults (256 kB c2s, 512 kB s2s) are enough; history
-- answers are paged at 10,000 records (about 400 kB of XML), so raise them
-- for Quoalise clients that ask for long histories.
c2s_stanza_size_limit = 2 * 1024 * 1024
s2s_stanza_size_limit = 2 * 1024 * 1024

-- Leave room for bursts of pushes (the default c2s rate limit is far lower
-- than a node can send).
limits = {
  c2s = { rate = "10mb/s" };
  s2sin = { rate = "10mb/s" };
}

VirtualHost "agency.example"
  -- certificates from Let's Encrypt or your CA, as prosodyctl cert import does
