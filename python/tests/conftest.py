"""Fixtures: a fresh ledger and a sink file with the shipped policy plugin."""

import os

import pytest

import vellum

POLICY = """
default = "keep"
[[rule]]
name = "no-file-deletion"
when = { all = [ { field = "kind", equals = "tool.call" }, { field = "subject", equals = "delete_file" } ] }
action = "reject"
reason = "deleting files needs an approval"
[[rule]]
name = "drop-heartbeats"
when = { field = "kind", matches = '^heartbeat\\.' }
action = "drop"
reason = "liveness noise"
"""


@pytest.fixture
def sink_file(tmp_path):
    vellum.init_ledger(str(tmp_path / "audit.db"), "test/python")
    (tmp_path / "policy.toml").write_text(POLICY)
    component = os.environ["VELLUM_POLICY_COMPONENT"]
    (tmp_path / "sink.toml").write_text(
        '[ledger]\npath = "audit.db"\n'
        f'[chain]\n[[chain.plugin]]\nname = "policy"\ncomponent = "{component}"\n'
        'config-file = "policy.toml"\n'
    )
    return tmp_path / "sink.toml"


@pytest.fixture
def sink(sink_file):
    sink = vellum.Sink.open(str(sink_file))
    yield sink
    try:
        sink.close()
    except vellum.Unavailable:
        pass  # the test closed it


def entries(sink_file):
    """(seq, kind, subject, tenant, correlation_id, chain_id) of every entry, in order."""
    found = vellum.query(str(sink_file.parent / "audit.db"), limit=10_000)
    return [
        (
            e["seq"],
            e["event"]["kind"],
            e["event"].get("subject"),
            e["event"].get("tenant"),
            e["event"].get("correlation_id"),
            e["event"].get("chain_id"),
        )
        for e in found
    ]
