// The official OpenTelemetry JS SDK exporting a GenAI `chat` span to `vellum serve` over
// OTLP/HTTP with JSON bodies; then reads it back from the ledger. Run by tests/all/serve.rs
// from target/otel-node (where its packages are installed).
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

const url = process.env.VELLUM_URL;
const token = process.env.VELLUM_TOKEN_A;
const exporter = new OTLPTraceExporter({
  url: `${url}/v1/traces`,
  headers: { authorization: `Bearer ${token}` },
});
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'js-support-agent' }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const span = provider.getTracer('agents').startSpan('chat gpt-x', {
  attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-x' },
});
const traceId = span.spanContext().traceId;
span.end();
await provider.forceFlush();
await provider.shutdown();

const response = await fetch(`${url}/v1/entries?correlation_id=${traceId}`, {
  headers: { authorization: `Bearer ${token}` },
});
const { entries } = await response.json();
if (entries.length !== 1) throw new Error(`expected 1 entry, got ${JSON.stringify(entries)}`);
const { event } = entries[0];
if (event.kind !== 'llm.call' || event.subject !== 'gpt-x' || event.actor !== 'js-support-agent') {
  throw new Error(`unexpected event ${JSON.stringify(event)}`);
}
console.log('node otel: ok');
