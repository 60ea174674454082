"""The sink in-process: receipts, atomic batches, typed errors, idempotency, threads."""

import json
import threading

import pytest

import vellum
from conftest import entries


def event(id, kind="tool.call", **fields):
    return {"id": id, "occurred_at": "2026-11-22T09:00:00Z", "kind": kind, **fields}


def test_emit_returns_a_durable_receipt(sink, sink_file):
    receipt = sink.emit(event("e1", subject="search", payload={"q": "flights"}))
    assert receipt["seq"] == 0 and receipt["event_id"] == "e1"
    assert receipt["disposition"] == "recorded"
    dropped = sink.emit(event("hb", kind="heartbeat.tick"))
    assert dropped["disposition"] == "dropped" and dropped["dropped_by"] == "policy"
    assert [row[:3] for row in entries(sink_file)] == [
        (0, "tool.call", "search"),
        (1, "heartbeat.tick", None),
    ]


def test_a_rejection_names_the_plugin_and_records_nothing(sink, sink_file):
    with pytest.raises(vellum.Rejected) as raised:
        sink.emit_batch([event("ok"), event("rm", subject="delete_file")])
    assert raised.value.plugin == "policy"
    assert "approval" in raised.value.reason
    assert isinstance(raised.value, vellum.VellumError)
    assert entries(sink_file) == []


def test_invalid_events_and_status_changes(sink, sink_file):
    with pytest.raises(vellum.InvalidEvent, match="occurred_at"):
        sink.emit({"id": "x", "occurred_at": "yesterday", "kind": "k"})
    with pytest.raises(vellum.InvalidEvent, match="unknown field"):
        sink.emit(event("x", tenat="acme"))
    envelope = {"id": "sc1", "occurred_at": "2026-11-22T09:00:01Z", "tenant": "acme"}
    change = {"intent_id": "i-7", "old_status": "active", "new_status": "completed", "reason": ""}
    with pytest.raises(vellum.InvalidEvent, match="reason"):
        sink.emit_status_change(envelope, change)
    change["reason"] = "all steps succeeded"
    receipt = sink.emit_status_change(envelope, change)
    assert entries(sink_file) == [(receipt["seq"], "intent.status-changed", "i-7", "acme", None, None)]


def test_a_retry_with_the_same_key_records_once(sink, sink_file):
    batch = [event("a", tenant="acme"), event("b", tenant="acme")]
    first = sink.emit_batch(batch, idempotency_key="req-1")
    assert sink.emit_batch(batch, idempotency_key="req-1") == first
    with pytest.raises(vellum.InvalidEvent, match="req-1"):
        sink.emit_batch([event("c", tenant="acme")], idempotency_key="req-1")
    assert len(entries(sink_file)) == 2


def test_threads_emit_at_once(sink, sink_file):
    receipts = []

    def producer(n):
        for i in range(50):
            receipts.append(sink.emit(event(f"t{n}-{i}"))["seq"])

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(receipts) == list(range(200))


def test_a_closed_sink_and_a_bad_file_raise(sink, tmp_path):
    checkpoint = sink.close()
    assert "\n0\n" in checkpoint
    with pytest.raises(vellum.Unavailable, match="closed"):
        sink.emit(event("late"))
    (tmp_path / "bad.toml").write_text("[ledger]\npath = 'missing.db'\n")
    with pytest.raises(vellum.OpenError, match="missing.db"):
        vellum.Sink.open(str(tmp_path / "bad.toml"))


def test_erasing_a_subject_forgets_its_content_and_records_the_erasure(sink, sink_file):
    ledger = str(sink_file.parent / "audit.db")
    for i, who in enumerate(["ada", "bob", "ada"]):
        sink.emit(
            event(f"e{i}", tenant="acme", payload={"note": f"{who}-private-{i}"},
                  labels={"data_subject": who})
        )
    report = sink.erase(subject="ada", reason="GDPR art. 17, request 7", by="dpo")
    assert report["entries_erased"] == 2 and report["keys_destroyed"] == 1
    found = {e["seq"]: e for e in vellum.query(ledger)}
    for seq in (0, 2):
        assert found[seq]["seal"]["erased"]["record"] == report["record_seq"]
        assert found[seq]["event"]["payload"] == {}
    assert found[1]["event"]["payload"] == {"note": "bob-private-1"}
    record = found[report["record_seq"]]
    assert record["event"]["kind"] == "vellum.erasure"
    assert record["event"]["payload"]["reason"] == "GDPR art. 17, request 7"
    # Only the subject's keyed hash is kept (hex, so test for the quoted subject).
    assert '"ada"' not in json.dumps(record)
    with pytest.raises(vellum.VellumError, match="nothing to erase"):
        sink.erase(subject="nobody", reason="x")
