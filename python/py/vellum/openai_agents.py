"""A trace processor for the OpenAI Agents SDK that records every finished span in Vellum.

    from agents import set_trace_processors
    from vellum.openai_agents import VellumTracingProcessor
    set_trace_processors([VellumTracingProcessor(sink, tenant="acme")])

Span types become the well-known kinds: `function` → `tool.call` (subject: the tool),
`agent` → `agent.invoke`, `generation` and `response` → `llm.call`, `handoff` →
`agent.handoff`, `guardrail` → `guardrail.check`; others `agent.span`. The trace id is the
correlation id, the workflow's group id the chain id. Each span is recorded with its span
id as idempotency key, so a re-sent span is recorded once.

Tracing runs beside the agent: with `raise_errors=False` (the default) a failed emit is
logged and kept in `.errors` instead of interrupting the agent. Code that must not act
unaudited emits through the sink itself before acting.
"""

import logging

from agents.tracing import TracingProcessor

from ._events import jsonable, now

log = logging.getLogger(__name__)

KINDS = {
    "function": "tool.call",
    "agent": "agent.invoke",
    "generation": "llm.call",
    "response": "llm.call",
    "handoff": "agent.handoff",
    "guardrail": "guardrail.check",
}


class VellumTracingProcessor(TracingProcessor):
    """Records each finished span of the Agents SDK as one audit event."""

    def __init__(self, sink, tenant=None, actor="openai-agents", raise_errors=False):
        self.sink = sink
        self.tenant = tenant
        self.actor = actor
        self.raise_errors = raise_errors
        self.errors = []
        self._groups = {}

    def on_trace_start(self, trace):
        group = getattr(trace, "group_id", None)
        if group:
            self._groups[trace.trace_id] = group

    def on_trace_end(self, trace):
        self._groups.pop(trace.trace_id, None)

    def on_span_start(self, span):
        pass

    def on_span_end(self, span):
        data = span.span_data
        exported = jsonable(data.export())
        span_type = getattr(data, "type", "span")
        event = {
            "id": f"openai-agents:{span.trace_id}:{span.span_id}",
            "occurred_at": span.started_at or now(),
            "correlation_id": span.trace_id,
            "actor": self.actor,
            "kind": KINDS.get(span_type, "agent.span"),
            "payload": {"span": exported, "error": jsonable(span.error)},
            "labels": {"source": "openai-agents", "span_type": span_type},
        }
        name = getattr(data, "name", None)
        if name:
            event["subject"] = str(name)
        if self.tenant:
            event["tenant"] = self.tenant
        group = self._groups.get(span.trace_id)
        if group:
            event["chain_id"] = group
        if span.parent_id:
            event["payload"]["parent_id"] = span.parent_id
        try:
            self.sink.emit(event, idempotency_key=event["id"])
        except Exception as error:  # recorded for the caller; see the module doc
            self.errors.append(error)
            log.error("vellum: span %s not recorded: %s", span.span_id, error)
            if self.raise_errors:
                raise

    def shutdown(self):
        pass

    def force_flush(self):
        pass
