"""Runs a Vellum plugin component in Python's `wasmtime` package (`wasmtime.component`),
with the `vellum:audit/host` interface implemented here in Python, and checks that it
returns exactly the verdicts the Rust host recorded (`vellum test --record`).

    python replay.py redact.wasm redact.transcript.json

Exit 0 when every verdict matches, byte for byte; 1 with the differences otherwise.
"""

import hashlib
import hmac
import json
import struct
import sys

from wasmtime import Engine, Store
from wasmtime.component import Component, Linker, Record, Variant

FILTER = "vellum:audit/filter@0.1.0"
HOST = "vellum:audit/host@0.1.0"


def pseudonym(key: bytes, domain: str, value: str) -> str:
    """The `pseudonymize` host function: `pseu:` + the first 16 bytes, hex, of
    HMAC-SHA-256(key, len(domain) as u32 big-endian ‖ domain ‖ value)."""
    d = domain.encode()
    message = struct.pack(">I", len(d)) + d + value.encode()
    return "pseu:" + hmac.new(key, message, hashlib.sha256).digest()[:16].hex()


def record(**fields) -> Record:
    r = Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r


def to_wit(event: dict) -> Record:
    """A transcript event (JSON) as the WIT `audit-event` record."""
    return record(
        id=event["id"],
        occurred_at=record(**event["occurred-at"]),
        tenant=event["tenant"],
        correlation_id=event["correlation-id"],
        chain_id=event["chain-id"],
        actor=event["actor"],
        kind=event["kind"],
        subject=event["subject"],
        payload=event["payload"],
        labels=[record(key=l["key"], value=l["value"]) for l in event["labels"]],
    )


def from_wit(event: Record) -> dict:
    field = lambda name: getattr(event, name)
    at = field("occurred-at")
    return {
        "id": field("id"),
        "occurred-at": {"seconds": at.seconds, "nanoseconds": at.nanoseconds},
        "tenant": field("tenant"),
        "correlation-id": field("correlation-id"),
        "chain-id": field("chain-id"),
        "actor": field("actor"),
        "kind": field("kind"),
        "subject": field("subject"),
        "payload": field("payload"),
        "labels": [{"key": l.key, "value": l.value} for l in field("labels")],
    }


def verdict(v: Variant) -> dict:
    if v.tag == "keep":
        return {"tag": "keep", "val": from_wit(v.payload)}
    if v.tag == "pass":
        return {"tag": "pass"}
    return {"tag": v.tag, "val": v.payload}


def main(component_path: str, transcript_path: str) -> int:
    with open(transcript_path) as f:
        transcript = json.load(f)
    key = bytes.fromhex(transcript["pseudonym-key"])
    engine = Engine()
    store = Store(engine)
    component = Component.from_file(engine, component_path)
    linker = Linker(engine)
    with linker.root() as root:
        with root.add_instance(HOST) as host:
            host.add_func("log", lambda _, level, message: print(f"plugin {level}: {message}", file=sys.stderr))
            host.add_func("pseudonymize", lambda _, domain, value: pseudonym(key, domain, value))
    instance = linker.instantiate(store, component)
    interface = instance.get_export_index(store, FILTER)
    configure = instance.get_func(store, instance.get_export_index(store, "configure", interface))
    apply = instance.get_func(store, instance.get_export_index(store, "apply", interface))
    refused = configure(store, transcript["config"])
    configure.post_return(store)
    if refused is not None:
        print(f"configure refused the configuration: {refused}")
        return 1
    mismatches = 0
    for call in transcript["calls"]:
        got = [verdict(v) for v in apply(store, [to_wit(e) for e in call["events"]])]
        apply.post_return(store)
        if got != call["verdicts"]:
            mismatches += 1
            print(f"FAIL {call['case']}\n  rust:   {call['verdicts']}\n  python: {got}")
    total = len(transcript["calls"])
    print(f"{total - mismatches} passed, {mismatches} failed")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
