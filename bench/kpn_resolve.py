"""The peer side of bench/senml.sh: decode + resolve + print a SenML JSON
pack with the kpn-senml package (PyPI), doing what `fedwatt senml resolve`
does.

kpn-senml 1.0.1 cannot resolve such a pack by itself: its
SenmlPack.from_json is an actuator API that needs "n" in every record,
merges records that share a name, and applies neither base time nor
relative times. So this script parses with json.loads (what from_json
uses), applies RFC 8428 resolution in Python, builds kpn_senml.SenmlRecord
objects in a SenmlPack, and prints SenmlPack.to_json().
"""

import json
import sys
import time

from kpn_senml import SenmlPack, SenmlRecord

RELATIVE_LIMIT = 2 ** 28


def resolve(raw, now):
    pack = SenmlPack(None)
    records = []
    bn, bt, bu, bv = "", 0.0, None, None
    for r in raw:
        bn = r.get("bn", bn)
        bt = r.get("bt", bt)
        bu = r.get("bu", bu)
        bv = r.get("bv", bv)
        t = bt + r.get("t", 0.0)
        if t < RELATIVE_LIMIT:
            t += now
        if "v" in r:
            value = r["v"] + (bv or 0)
        else:
            value = r.get("vs", r.get("vb", r.get("vd")))
        records.append(SenmlRecord(bn + r.get("n", ""), value=value, time=t, unit=r.get("u", bu)))
    records.sort(key=lambda rec: rec.time)  # stable, like RFC 8428 §4.6 asks
    for rec in records:
        pack.add(rec)
    return pack


def main():
    with open(sys.argv[1], "rb") as f:
        raw = json.loads(f.read())
    sys.stdout.write(resolve(raw, time.time()).to_json())
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
