// A producer in JavaScript (Node's fetch) against `vellum serve`'s native API. Run by
// tests/all/serve.rs with VELLUM_URL and VELLUM_TOKEN_A / VELLUM_TOKEN_B; exits non-zero on
// any mismatch.
const url = process.env.VELLUM_URL;
const [a, b] = [process.env.VELLUM_TOKEN_A, process.env.VELLUM_TOKEN_B];

async function call(method, path, body, token = a) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return [response.status, await response.json()];
}

function expect(what, status, [got, body]) {
  if (got !== status) throw new Error(`${what}: expected ${status}, got ${got}: ${JSON.stringify(body)}`);
  return body;
}

const event = (id, extra = {}) => ({ id, occurred_at: '2026-11-22T10:00:00Z', kind: 'memory.read', ...extra });

const { receipt } = expect('emit', 200, await call('POST', '/v1/emit', event('js-1', { payload: { key: 'k' } })));
const { receipts } = expect('batch', 200, await call('POST', '/v1/emit-batch', { events: [event('js-2'), event('js-3')] }));
if (receipts[1].seq !== receipts[0].seq + 1) throw new Error('batch receipts are not consecutive');
const { error } = expect('rejected tenant', 403, await call('POST', '/v1/emit', event('js-4', { tenant: 'acme' }), b));
if (error.class !== 'forbidden') throw new Error(JSON.stringify(error));
expect('no token', 401, await call('GET', '/v1/entries', undefined, null));
const { entries } = expect('query', 200, await call('GET', '/v1/entries?kind=memory.read'));
const ids = entries.map((e) => e.event.id);
for (const id of ['js-1', 'js-2', 'js-3']) if (!ids.includes(id)) throw new Error(`missing ${id}: ${ids}`);
const bundle = expect('prove', 200, await call('GET', `/v1/proof/inclusion/${receipt.seq}`));
if (bundle.inclusion.entry.event.id !== 'js-1') throw new Error('proof of the wrong entry');
expect('B proves A', 404, await call('GET', `/v1/proof/inclusion/${receipt.seq}`, undefined, b));

// Payloads as JavaScript writes them (insertion order, compact, non-ASCII kept, and a
// number past 2^53 typed by hand): the proof, saved exactly as served, is checked by the
// test with `vellum check-proof`.
const { writeFile } = await import('node:fs/promises');
const styles = [
  JSON.stringify({ b: 1, a: 2 }),
  JSON.stringify({ text: 'é😀', list: [1.5, null] }, null, 2),
  '{"big": 123456789012345678901234567890, "tiny": 1e-400}',
];
for (const [i, payload] of styles.entries()) {
  const body = `{"id":"js-style-${i}","occurred_at":"2026-11-22T10:00:00Z","kind":"memory.read","payload":${payload}}`;
  const response = await fetch(url + '/v1/emit', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${a}` }, body,
  });
  if (response.status !== 200) throw new Error(`style ${i}: ${response.status} ${await response.text()}`);
  const { seq } = (await response.json()).receipt;
  const proof = await fetch(`${url}/v1/proof/inclusion/${seq}`, { headers: { authorization: `Bearer ${a}` } });
  const raw = await proof.text();
  if (!raw.includes(`"payload":${payload}`)) throw new Error(`style ${i} came back altered: ${raw}`);
  await writeFile(`${process.env.VELLUM_PROOF_OUT}.node-${i}.json`, raw);
}
console.log('node client: ok');
