// Runs a Vellum plugin component in Node, transpiled by jco, with the `vellum:audit/host`
// interface implemented here in JavaScript, and checks that it returns exactly the verdicts
// the Rust host recorded (`vellum test --record`).
//
//   npx jco transpile redact.wasm -o out/redact --name redact --instantiation async --no-typescript
//   node replay.mjs out/redact/redact.js redact.transcript.json
//
// Exit 0 when every verdict matches, byte for byte; 1 with the differences otherwise.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const [modulePath, transcriptPath] = process.argv.slice(2);
const transcript = JSON.parse(await readFile(transcriptPath, 'utf8'));
const key = Buffer.from(transcript['pseudonym-key'], 'hex');

/** `pseu:` + the first 16 bytes, hex, of HMAC-SHA-256(key, len(domain) u32 BE ‖ domain ‖ value). */
function pseudonymize(domain, value) {
  const d = Buffer.from(domain, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(d.length);
  const tag = createHmac('sha256', key).update(length).update(d).update(Buffer.from(value, 'utf8')).digest();
  return `pseu:${tag.subarray(0, 16).toString('hex')}`;
}

const host = {
  log: (level, message) => console.error(`plugin ${level}: ${message}`),
  pseudonymize,
};

const some = (v) => (v === null ? undefined : v);
const toWit = (e) => ({
  id: e.id,
  occurredAt: { seconds: BigInt(e['occurred-at'].seconds), nanoseconds: e['occurred-at'].nanoseconds },
  tenant: some(e.tenant),
  correlationId: some(e['correlation-id']),
  chainId: some(e['chain-id']),
  actor: some(e.actor),
  kind: e.kind,
  subject: some(e.subject),
  payload: e.payload,
  labels: e.labels.map(({ key, value }) => ({ key, value })),
});
const none = (v) => (v === undefined ? null : v);
const fromWit = (e) => ({
  id: e.id,
  'occurred-at': { seconds: Number(e.occurredAt.seconds), nanoseconds: e.occurredAt.nanoseconds },
  tenant: none(e.tenant),
  'correlation-id': none(e.correlationId),
  'chain-id': none(e.chainId),
  actor: none(e.actor),
  kind: e.kind,
  subject: none(e.subject),
  payload: e.payload,
  labels: e.labels.map(({ key, value }) => ({ key, value })),
});
const verdict = (v) => {
  if (v.tag === 'keep') return { tag: 'keep', val: fromWit(v.val) };
  if (v.tag === 'pass') return { tag: 'pass' };
  return { tag: v.tag, val: v.val };
};

const module = resolve(modulePath);
const { instantiate } = await import(pathToFileURL(module).href);
const plugin = await instantiate(
  async (path) => WebAssembly.compile(await readFile(join(dirname(module), path))),
  { 'vellum:audit/host@0.1.0': host, 'vellum:audit/host': host },
);
const filter = plugin['vellum:audit/filter@0.1.0'];
try {
  filter.configure(transcript.config);
} catch (error) {
  console.log(`configure refused the configuration: ${error.payload ?? error}`);
  process.exit(1);
}
let failed = 0;
for (const call of transcript.calls) {
  const got = filter.apply(call.events.map(toWit)).map(verdict);
  if (!isDeepStrictEqual(got, call.verdicts)) {
    failed += 1;
    console.log(`FAIL ${call.case}\n  rust: ${JSON.stringify(call.verdicts)}\n  node: ${JSON.stringify(got)}`);
  }
}
console.log(`${transcript.calls.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
