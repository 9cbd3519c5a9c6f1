// What the SDK peer scripts share: checks that print one line each ("ok   name" or "FAIL name"
// with the error, then "N passed, N failed"), assertions, and a webhook receiver that verifies
// every delivery with the SDK's own stripe.webhooks.constructEvent.

import http from 'node:http';

const results = [];

export async function check(name, fn) {
  try {
    await fn();
    results.push([name, null]);
  } catch (e) {
    results.push([name, e && e.stack ? e.stack : String(e)]);
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error('assertion failed: ' + message);
}

export function equal(actual, expected, message) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${message}: expected ${b}, got ${a}`);
}

export async function rejects(promise, type, message) {
  try {
    await promise;
  } catch (e) {
    assert(e.type === type, `${message}: expected ${type}, got ${e.type} (${e.message})`);
    return e;
  }
  throw new Error(`${message}: no ${type}`);
}

// A webhook endpoint on 127.0.0.1:port: `received` holds what `record` makes of each verified
// event, `rejected` why others were refused.
export async function receive(stripe, port, secret, record) {
  const receiver = {received: [], rejected: []};
  receiver.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        const event = stripe.webhooks.constructEvent(
          Buffer.concat(chunks), req.headers['stripe-signature'], secret, 300);
        receiver.received.push(record(event));
        res.writeHead(200).end();
      } catch (e) {
        receiver.rejected.push(String(e));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((resolve) => receiver.server.listen(Number(port), '127.0.0.1', resolve));
  return receiver;
}

// Prints every check and exits 1 on any failure.
export function report() {
  let failed = 0;
  for (const [name, error] of results) {
    console.log((error ? 'FAIL ' : 'ok   ') + name);
    if (error) {
      failed += 1;
      console.log(error);
    }
  }
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
