"""A producer in Python, standard library only, against `vellum serve`'s native API.

Run by tests/all/serve.rs with VELLUM_URL, VELLUM_SOCKET, VELLUM_TOKEN_A (tenant acme) and
VELLUM_TOKEN_B (tenant beta). Exits non-zero, saying what failed, on any mismatch.
"""

import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.request

URL = os.environ["VELLUM_URL"]
SOCKET = os.environ["VELLUM_SOCKET"]
A = os.environ["VELLUM_TOKEN_A"]
B = os.environ["VELLUM_TOKEN_B"]


def call(method, path, body=None, token=A, headers=None, raw=None):
    """Returns (status, parsed JSON body or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(URL + path, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def expect(what, status, got):
    if got[0] != status:
        sys.exit(f"{what}: expected HTTP {status}, got {got[0]}: {got[1]}")
    return got[1]


def event(id, **fields):
    return {"id": id, "occurred_at": "2026-11-22T09:00:00Z", "kind": "tool.call", **fields}


# Emit: a receipt; the same request again: the same receipt; the same id with other
# content: refused, nothing recorded.
first = expect("emit", 200, call("POST", "/v1/emit", event("py-1", payload={"q": "x"})))["receipt"]
again = expect("retry", 200, call("POST", "/v1/emit", event("py-1", payload={"q": "x"})))["receipt"]
assert first == again, (first, again)
body = expect("reused id", 422, call("POST", "/v1/emit", event("py-1", payload={"q": "y"})))
assert body["error"]["class"] == "invalid-event", body

# The chain's verdicts: a policy rejection names the plugin; a drop is recorded as a marker.
body = expect("rejected", 409, call("POST", "/v1/emit", event(
    "py-rm", payload={"tool": "fs.delete"}, labels={"env": "prod"})))
assert body["error"]["plugin"] == "policy", body
dropped = expect("dropped", 200, call("POST", "/v1/emit", {
    "id": "py-hb", "occurred_at": "2026-11-22T09:00:00Z", "kind": "heartbeat.tick"}))["receipt"]
assert dropped["disposition"] == "dropped" and dropped["dropped_by"] == "policy", dropped

# An explicit Idempotency-Key covers a whole batch.
batch = [event(f"py-b{i}") for i in range(3)]
receipts = expect("batch", 200, call("POST", "/v1/emit-batch", {"events": batch},
                                    headers={"Idempotency-Key": "batch-1"}))["receipts"]
assert [r["seq"] for r in receipts] == list(range(receipts[0]["seq"], receipts[0]["seq"] + 3))
replayed = expect("batch retry", 200, call("POST", "/v1/emit-batch", {"events": batch},
                                          headers={"Idempotency-Key": "batch-1"}))["receipts"]
assert replayed == receipts

# The intent lifecycle shape: an empty reason is invalid; a real one is recorded.
change = {"intent_id": "intent-7", "old_status": "active", "new_status": "completed", "reason": ""}
envelope = {"id": "py-sc", "occurred_at": "2026-11-22T09:00:01Z"}
expect("empty reason", 422, call("POST", "/v1/status-change", {"envelope": envelope, "change": change}))
change["reason"] = "all steps succeeded"
expect("status change", 200, call("POST", "/v1/status-change", {"envelope": envelope, "change": change}))

# Bad requests name what is wrong.
body = expect("malformed", 400, call("POST", "/v1/emit", raw=b'{"id": "x",'))
assert "line 1" in body["error"]["message"], body
expect("no token", 401, call("GET", "/v1/entries", token=None))
expect("wrong token", 401, call("GET", "/v1/entries", token="vt_not-a-token"))
# Just over the server's 1 MiB limit: the server answers 413 once it has read 1 MiB and
# closes, so the few bytes left must already be sent by then (they fit in the socket's
# buffers); a close that still races the last write is retried, never counted as a pass.
for attempt in range(5):
    try:
        too_large = call("POST", "/v1/emit", raw=b" " * ((1 << 20) + 4096))
        break
    except (BrokenPipeError, ConnectionResetError, urllib.error.URLError):
        if attempt == 4:
            raise
expect("too large", 413, too_large)

# Tenancy: B can neither write as A, nor read A's entries or proofs.
expect("B writes as acme", 403, call("POST", "/v1/emit", event("py-x", tenant="acme"), token=B))
expect("B reads acme", 403, call("GET", "/v1/entries?tenant=acme", token=B))
mine = expect("query", 200, call("GET", "/v1/entries?kind=tool.call&limit=100"))["entries"]
ids = {e["event"]["id"] for e in mine}
assert {"py-1", "py-b0", "py-b1", "py-b2"} <= ids, ids
assert all(e["event"]["tenant"] == "acme" for e in mine)
theirs = expect("B query", 200, call("GET", "/v1/entries", token=B))["entries"]
assert not any(e["event"]["tenant"] == "acme" for e in theirs), theirs
seq = first["seq"]
expect("B proves A's entry", 404, call("GET", f"/v1/proof/inclusion/{seq}", token=B))

# Proofs: inclusion (a checkpoint is signed if none covers the entry), consistency.
bundle = expect("inclusion", 200, call("GET", f"/v1/proof/inclusion/{seq}"))
assert bundle["inclusion"]["seq"] == seq and len(bundle["checkpoints"]) == 1
old = expect("checkpoint", 200, call("GET", "/v1/checkpoint"))["size"]
newest = expect("emit", 200, call("POST", "/v1/emit", event("py-2")))["receipt"]["seq"]
expect("inclusion 2", 200, call("GET", f"/v1/proof/inclusion/{newest}"))
new = expect("checkpoint 2", 200, call("GET", "/v1/checkpoint"))["size"]
consistency = expect("consistency", 200, call("GET", f"/v1/proof/consistency?old={old}&new={new}"))
assert consistency["consistency"]["old_size"] == old
with open(os.environ["VELLUM_PROOF_OUT"], "w") as out:
    json.dump(bundle, out)

# Payloads in Python's own styles (spaces after separators, key order as written, \u
# escapes of non-ASCII, integers past 64 bits, indentation): the entries read back carry
# the bytes as sent, and each proof, saved exactly as served, is checked by the test with
# `vellum check-proof`.
styles = [
    json.dumps({"b": 1, "a": 2}),
    json.dumps({"café": "é😀", "n": 12345678901234567890123}),
    json.dumps({"z": [1.5, None, True], "a": {"nested": "x"}}, indent=2),
    json.dumps({"raw": "é😀"}, ensure_ascii=False, separators=(",", ":")),
]
for i, payload in enumerate(styles):
    body = ('{"id": "py-style-%d", "occurred_at": "2026-11-22T09:00:00Z", "kind": "tool.call", '
            '"payload": %s}' % (i, payload)).encode()
    seq = expect("style", 200, call("POST", "/v1/emit", raw=body))["receipt"]["seq"]
    request = urllib.request.Request(URL + f"/v1/proof/inclusion/{seq}")
    request.add_header("Authorization", "Bearer " + A)
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    assert ('"payload":' + payload).encode() in raw, (payload, raw)
    with open(os.environ["VELLUM_PROOF_OUT"] + f".python-{i}.json", "wb") as out:
        out.write(raw)
# Verifying reads every tenant's entries: B's producer token may not, A's admin token may.
expect("B verifies", 403, call("POST", "/v1/verify", token=B))
report = expect("verify", 200, call("POST", "/v1/verify"))
assert report["ok"] is True, report


# OTLP/HTTP with JSON: a span that cannot be mapped is counted in partial_success; errors
# carry a google.rpc.Status in the request's encoding.
spans = {"resourceSpans": [{"scopeSpans": [{"spans": [
    {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
     "name": "execute_tool lookup", "startTimeUnixNano": "1700000000000000000",
     "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                    {"key": "gen_ai.tool.name", "value": {"stringValue": "lookup"}}]},
    {"name": "no ids"}]}]}]}
body = expect("otlp", 200, call("POST", "/v1/traces", spans))
assert body["partialSuccess"]["rejectedSpans"] in (1, "1"), body
assert "no valid trace id" in body["partialSuccess"]["errorMessage"], body
body = expect("otlp no token", 401, call("POST", "/v1/traces", spans, token=None))
assert body["code"] == 16, body
status, _ = call("POST", "/v1/logs", raw=b"x", headers={"Content-Type": "text/plain"})
assert status == 415, status

# Operations: health, readiness, metrics, the OpenAPI document (no token needed).
assert call("GET", "/healthz", token=None)[0] == 200
assert call("GET", "/readyz", token=None)[0] == 200
status, metrics = call("GET", "/metrics", token=None)
assert status == 200
for line in ['vellum_events_total{outcome="rejected",plugin="policy"} 1',
             'vellum_events_total{outcome="dropped",plugin="policy"} 1',
             "vellum_commit_duration_seconds_count", "vellum_queue_depth"]:
    assert line in metrics, f"{line} not in /metrics:\n{metrics}"
status, openapi = call("GET", "/openapi.json", token=None)
assert status == 200 and openapi["openapi"] == "3.1.0"

# The same API over the Unix socket.
class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


connection = UnixConnection("localhost")
connection.request("POST", "/v1/emit", json.dumps(event("py-unix")),
                   {"Authorization": "Bearer " + A, "Content-Type": "application/json"})
response = connection.getresponse()
assert response.status == 200, response.read()
assert json.loads(response.read())["receipt"]["event_id"] == "py-unix"
print("python client: ok")
