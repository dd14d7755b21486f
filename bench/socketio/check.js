'use strict';
// Functional check with the official client. Starts nothing: run two server.js instances first.
//   node check.js 3001 3002
// A connects to the first port, B to the second; A sends to B; B must receive it, A must get the ack.

const { io } = require('socket.io-client');

const [portA, portB] = [process.argv[2] || '3001', process.argv[3] || '3002'];
const HOST = process.env.HOST || '127.0.0.1';
const run = Date.now().toString(36);
const userA = 'a' + run;
const userB = 'b' + run;

function connect(port, user) {
  return new Promise((resolve, reject) => {
    const s = io(`http://${HOST}:${port}`, {
      transports: ['websocket'],
      query: { user },
      reconnection: false,
      timeout: 5000,
    });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}

async function main() {
  const timer = setTimeout(() => fail('timeout after 10s'), 10000);
  const a = await connect(portA, userA);
  const b = await connect(portB, userB);
  console.log(`A=${userA} on :${portA} (sid ${a.id}), B=${userB} on :${portB} (sid ${b.id})`);

  const payload = { to: userB, id: 'm1-' + run, t: Date.now(), body: 'hola despacio' };

  const received = new Promise((resolve) => b.once('message', resolve));
  // B must not get its own copy twice, A must not receive anything.
  let extraOnA = 0;
  a.on('message', () => extraOnA++);

  // Give the adapter a moment? Not needed: join() is synchronous and the
  // Redis PSUBSCRIBE was done at startup. Send right away.
  const ack = await a.timeout(5000).emitWithAck('send', payload);
  console.log('A got ack:', JSON.stringify(ack));
  if (!ack || ack.id !== payload.id) fail('ack mismatch: ' + JSON.stringify(ack));

  const got = await received;
  console.log('B got message:', JSON.stringify(got));
  if (JSON.stringify(got) !== JSON.stringify(payload)) fail('payload mismatch');

  // Reverse direction too (B on instance 2 -> A on instance 1).
  const back = { to: userA, id: 'm2-' + run, t: Date.now(), body: 'de vuelta' };
  const receivedA = new Promise((resolve) => a.once('message', resolve));
  const ack2 = await b.timeout(5000).emitWithAck('send', back);
  if (!ack2 || ack2.id !== back.id) fail('ack2 mismatch: ' + JSON.stringify(ack2));
  const gotA = await receivedA;
  if (JSON.stringify(gotA) !== JSON.stringify(back)) fail('reverse payload mismatch');
  console.log('reverse direction ok');

  await new Promise((r) => setTimeout(r, 200));
  if (extraOnA !== 1) fail(`A received ${extraOnA} messages, expected 1`);

  clearTimeout(timer);
  a.close();
  b.close();
  console.log('check.js: OK');
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
