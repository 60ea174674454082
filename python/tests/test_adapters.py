"""The adapters with the real packages from PyPI, driven without any model call."""

import pytest
from agents.tracing import function_span, set_trace_processors, trace
from langchain_core.tools import tool

import vellum
from conftest import entries
from vellum.langchain import VellumCallbackHandler
from vellum.openai_agents import VellumTracingProcessor


def test_openai_agents_spans_become_events(sink, sink_file):
    processor = VellumTracingProcessor(sink, tenant="acme")
    set_trace_processors([processor])
    try:
        with trace("booking", group_id="conv-1") as t:
            with function_span("book_flight", input='{"to": "LIS"}') as span:
                span.span_data.output = "booked"
            with function_span("delete_file", input="/etc/passwd"):
                pass
    finally:
        set_trace_processors([])
    rows = entries(sink_file)
    assert [(kind, subject, tenant, corr, chain) for _, kind, subject, tenant, corr, chain in rows] == [
        ("tool.call", "book_flight", "acme", t.trace_id, "conv-1"),
    ]
    # The policy refused the second span: tracing kept going, the error is kept.
    assert len(processor.errors) == 1 and isinstance(processor.errors[0], vellum.Rejected)


def test_langchain_a_refused_tool_never_runs(sink, sink_file):
    ran = []

    @tool
    def delete_file(path: str) -> str:
        """Deletes a file."""
        ran.append(path)
        return "deleted"

    @tool
    def read_file(path: str) -> str:
        """Reads a file."""
        ran.append(path)
        return "contents"

    handler = VellumCallbackHandler(sink, tenant="acme")
    with pytest.raises(vellum.Rejected):
        delete_file.invoke({"path": "/tmp/x"}, config={"callbacks": [handler]})
    assert ran == [], "the tool ran although its audit event was refused"
    assert read_file.invoke({"path": "/tmp/y"}, config={"callbacks": [handler]}) == "contents"
    assert ran == ["/tmp/y"]
    kinds = [(kind, subject) for _, kind, subject, *_ in entries(sink_file)]
    assert kinds == [("tool.call", "read_file"), ("tool.result", None)]
