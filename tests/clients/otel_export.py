"""The official OpenTelemetry Python SDK exporting to `vellum serve` (OTLP/HTTP, protobuf),
configured only by the standard OTEL_EXPORTER_OTLP_* environment variables. Exports a GenAI
tool span twice (a redelivery) and a log record, then reads them back from the ledger.
"""

import json
import os
import sys
import urllib.request

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

resource = Resource.create({"service.name": "py-travel-agent"})
captured = InMemorySpanExporter()
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(captured))
tracer = tracer_provider.get_tracer("agents")
with tracer.start_as_current_span("execute_tool book_flight") as span:
    span.set_attribute("gen_ai.operation.name", "execute_tool")
    span.set_attribute("gen_ai.tool.name", "book_flight")
    span.set_attribute("gen_ai.tool.call.arguments", json.dumps({"to": "LIS"}))
    trace_id = format(span.get_span_context().trace_id, "032x")

exporter = OTLPSpanExporter()  # endpoint and headers from OTEL_EXPORTER_OTLP_*
spans = captured.get_finished_spans()
for attempt in range(2):  # the second export is a redelivery of the same span
    result = exporter.export(spans)
    if result is not SpanExportResult.SUCCESS:
        sys.exit(f"span export #{attempt + 1} failed: {result}")

logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter()))
logger = logger_provider.get_logger("agents")
with tracer.start_as_current_span("approve"):
    logger.emit(
        body="refund approved by a human",
        severity_number=SeverityNumber.INFO,
        event_name="approval.granted",
        attributes={"approver": "ops@example.com"},
    )
logger_provider.force_flush()

base = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
token = os.environ["VELLUM_TOKEN_A"]


def entries(query):
    request = urllib.request.Request(f"{base}/v1/entries?{query}")
    request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["entries"]


tool_calls = entries(f"correlation_id={trace_id}&kind=tool.call")
assert len(tool_calls) == 1, f"expected the span once, got {len(tool_calls)}"
event = tool_calls[0]["event"]
assert event["subject"] == "book_flight" and event["actor"] == "py-travel-agent", event
assert event["tenant"] == "acme", event
approvals = entries("kind=approval.granted")
assert len(approvals) == 1, approvals
assert approvals[0]["event"]["payload"]["body"] == "refund approved by a human", approvals
print("python otel: ok")
