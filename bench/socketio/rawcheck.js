'use strict';
// Raw-protocol check: speaks Engine.IO v4 / Socket.IO v5 by hand over a plain WebSocket
// (only the `ws` package), exactly as the Rust load generator must. Starts nothing.
//   node rawcheck.js 3001 3002
// Set VERBOSE=1 to print every frame. If the servers run with a short SIO_PING_INTERVAL
// (e.g. 1000), the heartbeat part (ping "2" -> pong "3", and the close when pongs stop)
// is checked too; with the 25 s default it is skipped.

const WebSocket = require('ws');

const [portA, portB] = [process.argv[2] || '3001', process.argv[3] || '3002'];
const HOST = process.env.HOST || '127.0.0.1';
const VERBOSE = !!process.env.VERBOSE;
const run = Date.now().toString(36);

let failed = false;
function fail(msg) {
  console.error('FAIL: ' + msg);
  failed = true;
  process.exit(1);
}
function ok(msg) {
  console.log('ok   ' + msg);
}

// A minimal raw client: a frame queue, auto-pong, and waiters.
class Raw {
  constructor(name, port, user, { autoPong = true } = {}) {
    this.name = name;
    this.user = user;
    this.autoPong = autoPong;
    this.url = `ws://${HOST}:${port}/socket.io/?EIO=4&transport=websocket&user=${encodeURIComponent(user)}`;
    this.queue = [];
    this.waiters = [];
    this.pings = 0;
    this.closed = null;
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws.on('open', resolve);
      this.ws.on('error', reject);
      this.ws.on('message', (data, isBinary) => {
        if (isBinary) return fail(`${this.name}: unexpected binary frame`);
        const f = data.toString();
        if (VERBOSE) console.log(`  ${this.name} <= ${f}`);
        if (f === '2') {
          this.pings++;
          if (this.autoPong) this.send('3');
          return;
        }
        this.queue.push(f);
        this.flush();
      });
      this.ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString(), at: Date.now() };
        if (VERBOSE) console.log(`  ${this.name} closed ${code}`);
        this.flush();
      });
    });
  }
  send(f) {
    if (VERBOSE) console.log(`  ${this.name} => ${f}`);
    this.ws.send(f);
  }
  flush() {
    while (this.waiters.length && (this.queue.length || this.closed)) {
      const w = this.waiters.shift();
      if (this.queue.length) w.resolve(this.queue.shift());
      else w.reject(new Error(`${this.name}: connection closed ${this.closed.code}`));
    }
  }
  next(ms = 5000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no frame within ${ms} ms`)), ms);
      this.waiters.push({
        resolve: (f) => { clearTimeout(t); resolve(f); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      this.flush();
    });
  }
  // Engine.IO open + Socket.IO CONNECT handshake. Returns the parsed open packet.
  async handshake() {
    await this.open();
    const open = await this.next();
    if (open[0] !== '0') fail(`${this.name}: expected open packet "0{...}", got ${open}`);
    const hs = JSON.parse(open.slice(1));
    for (const k of ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']) {
      if (!(k in hs)) fail(`${this.name}: open packet lacks ${k}: ${open}`);
    }
    this.send('40');
    const con = await this.next();
    if (!con.startsWith('40{')) fail(`${this.name}: expected 40{"sid":...}, got ${con}`);
    this.sid = JSON.parse(con.slice(2)).sid;
    this.openPacket = open;
    this.connectPacket = con;
    return hs;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function main() {
  const guard = setTimeout(() => fail('overall timeout'), 30000);
  const A = new Raw('A', portA, 'ra' + run);
  const B = new Raw('B', portB, 'rb' + run);

  const hsA = await A.handshake();
  const hsB = await B.handshake();
  ok(`open     A <= ${A.openPacket}`);
  ok(`connect  A => 40   A <= ${A.connectPacket}`);
  ok(`open     B <= ${B.openPacket}`);
  ok(`connect  B => 40   B <= ${B.connectPacket}`);
  if (hsA.upgrades.length !== 0) fail('expected no upgrades with transports [websocket]');

  // Event with ack id 0, A (instance 1) -> B (instance 2).
  const p1 = { to: B.user, id: 'r1-' + run, t: Date.now(), body: 'hola "raw" ñ' };
  const f1 = '420' + JSON.stringify(['send', p1]);
  A.send(f1);
  const ack1 = await A.next();
  const expAck1 = '430' + JSON.stringify([{ id: p1.id }]);
  if (ack1 !== expAck1) fail(`ack: expected ${expAck1}, got ${ack1}`);
  ok(`send     A => ${f1}`);
  ok(`ack      A <= ${ack1}`);
  const m1 = await B.next();
  const expM1 = '42' + JSON.stringify(['message', p1]);
  if (m1 !== expM1) fail(`message: expected ${expM1}, got ${m1}`);
  ok(`message  B <= ${m1}`);

  // Ack ids are chosen by the client; any non-negative integer, echoed back verbatim.
  const p2 = { to: A.user, id: 'r2-' + run, t: Date.now(), body: 'x' };
  const f2 = '4217' + JSON.stringify(['send', p2]);
  B.send(f2);
  const ack2 = await B.next();
  const expAck2 = '4317' + JSON.stringify([{ id: p2.id }]);
  if (ack2 !== expAck2) fail(`ack 17: expected ${expAck2}, got ${ack2}`);
  const m2 = await A.next();
  if (m2 !== '42' + JSON.stringify(['message', p2])) fail(`reverse message: got ${m2}`);
  ok(`ack id 17 B => ${f2.slice(0, 12)}...  B <= ${ack2}; A <= ${m2.slice(0, 24)}...`);

  // Event without ack id: message still relayed, no ack frame comes back.
  const p3 = { to: B.user, id: 'r3-' + run, t: Date.now(), body: 'no ack' };
  A.send('42' + JSON.stringify(['send', p3]));
  const m3 = await B.next();
  if (m3 !== '42' + JSON.stringify(['message', p3])) fail(`no-ack message: got ${m3}`);
  await sleep(200);
  if (A.queue.length) fail(`unexpected frame on A after ack-less send: ${A.queue[0]}`);
  ok('send without ack id (42[...]) relays and gets no ack');

  // Same-instance delivery: C on A's instance, A -> C.
  const C = new Raw('C', portA, 'rc' + run);
  await C.handshake();
  const p4 = { to: C.user, id: 'r4-' + run, t: Date.now(), body: 'local' };
  A.send('421' + JSON.stringify(['send', p4]));
  const [ack4, m4] = await Promise.all([A.next(), C.next()]);
  if (ack4 !== '431' + JSON.stringify([{ id: p4.id }])) fail(`local ack: got ${ack4}`);
  if (m4 !== '42' + JSON.stringify(['message', p4])) fail(`local message: got ${m4}`);
  ok('same-instance delivery works');

  // Unknown recipient: ack still comes, nothing delivered anywhere.
  A.send('422' + JSON.stringify(['send', { to: 'nobody' + run, id: 'r5', t: 0, body: '' }]));
  const ack5 = await A.next();
  if (ack5 !== '432[{"id":"r5"}]') fail(`unknown-recipient ack: got ${ack5}`);
  ok('unknown recipient: ack only');

  // Heartbeat: server sends "2" every pingInterval; client must answer "3" within pingTimeout.
  if (hsA.pingInterval <= 5000) {
    const D = new Raw('D', portB, 'rd' + run, { autoPong: false });
    const hsD = await D.handshake();
    const start = Date.now();
    const waitFor = hsA.pingInterval * 2 + 500;
    await sleep(waitFor);
    if (A.pings < 1 || B.pings < 1) fail(`expected pings, got A=${A.pings} B=${B.pings}`);
    if (A.closed || B.closed) fail('A/B closed although they answered pings');
    ok(`heartbeat: A got ${A.pings} ping(s) "2", answered "3", still open after ${waitFor} ms`);
    // Still functional after the heartbeat.
    A.send('423' + JSON.stringify(['send', { to: B.user, id: 'r6', t: 1, body: 'after ping' }]));
    if ((await A.next()) !== '433[{"id":"r6"}]') fail('ack after heartbeat');
    if (!(await B.next()).startsWith('42["message",{"to"')) fail('message after heartbeat');
    ok('relay still works after heartbeats');
    // D never answers: the server closes it after about pingInterval + pingTimeout.
    const limit = hsD.pingInterval + hsD.pingTimeout + 2000;
    while (!D.closed && Date.now() - start < limit) await sleep(50);
    if (!D.closed) fail(`D (no pongs) still open after ${limit} ms`);
    ok(`no pong: server closed D (ws code ${D.closed.code}) after ${D.closed.at - start} ms ` +
       `(pingInterval ${hsD.pingInterval} + pingTimeout ${hsD.pingTimeout}), pings seen ${D.pings}`);
    C.ws.close();
  } else {
    console.log(`skip heartbeat test (pingInterval ${hsA.pingInterval} ms; start servers with SIO_PING_INTERVAL=1000 SIO_PING_TIMEOUT=1000 to run it)`);
    C.ws.close();
  }

  // Clean client-side close: Socket.IO DISCONNECT "41", then Engine.IO CLOSE "1" (optional), then ws close.
  A.send('41');
  A.ws.close();
  B.ws.close();
  clearTimeout(guard);
  if (!failed) console.log('rawcheck.js: OK');
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
