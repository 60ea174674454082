"""Vellum, the audit sink for AI-agent runtimes, in-process.

    import vellum
    sink = vellum.Sink.open("sink.toml")
    receipt = sink.emit({"id": "e1", "occurred_at": "2026-11-22T09:00:00Z",
                         "kind": "tool.call", "payload": {"tool": "search"}})
    print(receipt["seq"])  # returned only once the entry is durable
    sink.close()

Every emit returns receipts only after the entries are durable, or raises: `InvalidEvent`,
`Rejected` (`.plugin` names the plugin) or `Unavailable`. On any error nothing was
recorded: treat the action as not audited. Adapters: `vellum.openai_agents`,
`vellum.langchain`. `vellum.query(ledger)` reads entries back; `sink.erase(subject=…,
reason=…)` forgets a data subject (see docs/erasure.md).
"""

from ._native import (
    InvalidEvent,
    OpenError,
    Rejected,
    Sink,
    Unavailable,
    VellumError,
    init_ledger,
    query,
)

__all__ = [
    "InvalidEvent",
    "OpenError",
    "Rejected",
    "Sink",
    "Unavailable",
    "VellumError",
    "init_ledger",
    "query",
]
