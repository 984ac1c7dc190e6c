#!/usr/bin/env python3
"""An independent Quoalise client, written with slixmpp as the Quoalise
reference client is, sharing no code with fedwatt: the federation tests use
it to check that a fedwatt node answers a Quoalise client, and to send what
a misbehaving peer would send.

    quoalise_client.py --jid J --password P --address HOST:PORT --ca CA.pem COMMAND ...

Commands (each prints one JSON object on standard output):
    history TO IDENTIFIER [START] [END]
        {"records": [[t, v], ...]} or {"error": condition, "text": ...}
    subscribe TO IDENTIFIER --records N --timeout S
        subscribes, then waits for pushes until N records arrived:
        {"subscribed": true, "records": [[t, v], ...], "pushes": k}
    raw TO XML
        sends XML as the payload of an IQ set: {"result": xml} or {"error": ...}
    message TO XML
        sends XML as the payload of a message: {"sent": true}
"""

import argparse
import asyncio
import json
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

COMMANDS = "http://jabber.org/protocol/commands"
DATA = "jabber:x:data"
QUOALISE = "urn:quoalise:0"
SENML = "urn:ietf:params:xml:ns:senml"


def records_of(quoalise):
    """Resolves the SenML XML records of a <quoalise> element: (t, v) pairs."""
    out = []
    for data in quoalise.findall("{%s}data" % QUOALISE):
        for sensml in data.findall("{%s}sensml" % SENML):
            bn, bt = "", 0.0
            for r in sensml.findall("{%s}senml" % SENML):
                bn = r.get("bn", bn)
                bt = float(r.get("bt", bt))
                if r.get("v") is not None:
                    out.append([bt + float(r.get("t", 0)), float(r.get("v"))])
    return out


def command(node, fields):
    cmd = ET.Element("{%s}command" % COMMANDS, node=node, action="execute")
    form = ET.SubElement(cmd, "{%s}x" % DATA, type="submit")
    for var, value in fields:
        if value is None:
            continue
        field = ET.SubElement(form, "{%s}field" % DATA, var=var)
        ET.SubElement(field, "{%s}value" % DATA).text = value
    return cmd


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.pushes = []
        self.push_event = asyncio.Event()
        self.register_plugin("xep_0184")  # answers receipt requests
        self["xep_0184"].auto_ack = True
        self.register_handler(Callback(
            "quoalise push",
            MatchXPath("{jabber:client}message/{%s}quoalise" % QUOALISE),
            self.on_push))
        self.add_event_handler("session_start", self.start)
        self.outcome = None

    def on_push(self, msg):
        self.pushes.append(records_of(msg.xml.find("{%s}quoalise" % QUOALISE)))
        self.push_event.set()

    async def iq(self, to, payload):
        iq = self.make_iq_set(ito=to)
        iq.append(payload)
        try:
            result = await iq.send(timeout=20)
            return result, None
        except IqError as e:
            err = e.iq["error"]
            return None, {"error": err["condition"], "text": err["text"]}
        except IqTimeout:
            return None, {"error": "timeout"}

    async def start(self, _event):
        a = self.args
        try:
            if a.command == "history":
                start = a.rest[0] if len(a.rest) > 0 else None
                end = a.rest[1] if len(a.rest) > 1 else None
                result, error = await self.iq(a.to, command("get_history", [
                    ("identifier", a.identifier), ("start_time", start), ("end_time", end)]))
                if error:
                    self.outcome = error
                else:
                    q = result.xml.find(".//{%s}quoalise" % QUOALISE)
                    self.outcome = {"records": records_of(q) if q is not None else []}
            elif a.command == "subscribe":
                # Available, so that pushes to the bare JID reach us.
                self.send_presence()
                result, error = await self.iq(a.to, command("subscribe", [("identifier", a.identifier)]))
                if error:
                    self.outcome = error
                else:
                    print(json.dumps({"subscribed": True}), flush=True)
                    loop = asyncio.get_event_loop()
                    deadline = loop.time() + a.timeout
                    while sum(len(p) for p in self.pushes) < a.records:
                        left = deadline - loop.time()
                        if left <= 0:
                            break
                        self.push_event.clear()
                        try:
                            await asyncio.wait_for(self.push_event.wait(), left)
                        except asyncio.TimeoutError:
                            break
                    # Let the last receipts go out.
                    await asyncio.sleep(0.3)
                    self.outcome = {"records": [r for p in self.pushes for r in p],
                                    "pushes": len(self.pushes)}
            elif a.command == "raw":
                result, error = await self.iq(a.to, ET.fromstring(a.identifier))
                self.outcome = error or {"result": str(result)}
            elif a.command == "message":
                msg = self.make_message(mto=a.to)
                msg.append(ET.fromstring(a.identifier))
                msg.send()
                await asyncio.sleep(0.5)
                self.outcome = {"sent": True}
        finally:
            self.disconnect()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--address", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--records", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("command", choices=["history", "subscribe", "raw", "message"])
    p.add_argument("to")
    p.add_argument("identifier")
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    client = Client(args)
    client.ssl_context = ssl.create_default_context(cafile=args.ca)
    host, port = args.address.rsplit(":", 1)
    client.connect((host, int(port)))
    loop = asyncio.get_event_loop()
    loop.run_until_complete(client.disconnected)
    print(json.dumps(client.outcome if client.outcome is not None else {"error": "no session"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
