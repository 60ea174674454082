"""A LangChain callback handler that records tool and LLM calls in Vellum.

    from vellum.langchain import VellumCallbackHandler
    handler = VellumCallbackHandler(sink, tenant="acme")
    tool.invoke({"path": "/tmp/x"}, config={"callbacks": [handler]})

`on_tool_start` records a `tool.call` (subject: the tool, payload: its input) *before* the
tool runs. The handler sets LangChain's `raise_error`, so when the emit fails — a policy
plugin rejects the call, the ledger is unavailable — the exception reaches the caller and
the tool never runs: mandatory audit. `on_tool_end`/`on_tool_error` record
`tool.result`/`tool.error`, `on_llm_start`/`on_chat_model_start` and `on_llm_end`
record `llm.call` and `llm.result`. The run id is the correlation id of one run's events.
"""

from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ._events import jsonable, now


class VellumCallbackHandler(BaseCallbackHandler):
    """Emits one audit event per tool and LLM callback; fails closed."""

    raise_error = True

    def __init__(self, sink, tenant=None, actor="langchain"):
        self.sink = sink
        self.tenant = tenant
        self.actor = actor

    def _emit(self, kind, run_id: UUID, parent_run_id, subject=None, payload=None, suffix=""):
        event = {
            "id": f"langchain:{run_id}:{kind}{suffix}",
            "occurred_at": now(),
            "correlation_id": str(parent_run_id or run_id),
            "actor": self.actor,
            "kind": kind,
            "payload": jsonable(payload or {}),
            "labels": {"source": "langchain", "run_id": str(run_id)},
        }
        if subject:
            event["subject"] = subject
        if self.tenant:
            event["tenant"] = self.tenant
        return self.sink.emit(event)

    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, inputs=None, **kwargs):
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        payload = {"tool": name, "input": inputs if inputs is not None else input_str}
        self._emit("tool.call", run_id, parent_run_id, subject=name, payload=payload)

    def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        self._emit("tool.result", run_id, parent_run_id, payload={"output": jsonable(output)})

    def on_tool_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._emit("tool.error", run_id, parent_run_id, payload={"error": str(error)})

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs):
        model = ((serialized or {}).get("kwargs") or {}).get("model") or (serialized or {}).get("name")
        self._emit("llm.call", run_id, parent_run_id, subject=model, payload={"prompts": prompts})

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        model = ((serialized or {}).get("kwargs") or {}).get("model") or (serialized or {}).get("name")
        rendered = [[jsonable(getattr(m, "content", m)) for m in batch] for batch in messages]
        self._emit("llm.call", run_id, parent_run_id, subject=model, payload={"messages": rendered})

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        texts = [[getattr(g, "text", str(g)) for g in gens] for gens in getattr(response, "generations", [])]
        self._emit("llm.result", run_id, parent_run_id, payload={"generations": texts})
