'use strict';
// Baseline chat relay for the ws-gateway benchmark: Socket.IO v4 + Redis adapter.
// Start one process per port; all processes sharing REDIS_URL + SIO_PREFIX form one cluster.
//
//   PORT=3001 node server.js   # prints "listening 3001" when ready
//
// Protocol (see README.md for the raw frames):
//   connect  ws://host:PORT/socket.io/?EIO=4&transport=websocket&user=<id>  -> joins room u:<id>
//   emit     "send" {to, id, t, body} + ack  -> "message" {to, id, t, body} to room u:<to>, ack({id})

const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const PREFIX = process.env.SIO_PREFIX || 'sio-bench';
// Engine.IO heartbeat; defaults are Socket.IO's own (25000 / 20000 ms).
const PING_INTERVAL = Number(process.env.SIO_PING_INTERVAL || 25000);
const PING_TIMEOUT = Number(process.env.SIO_PING_TIMEOUT || 20000);

async function main() {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  pub.on('error', (e) => console.error('redis pub error:', e.message));
  sub.on('error', (e) => console.error('redis sub error:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ['websocket'],
    perMessageDeflate: false,
    serveClient: false,
    pingInterval: PING_INTERVAL,
    pingTimeout: PING_TIMEOUT,
    adapter: createAdapter(pub, sub, { key: PREFIX }),
  });

  io.on('connection', (socket) => {
    const user = socket.handshake.query.user;
    if (typeof user !== 'string' || user === '') {
      socket.disconnect(true);
      return;
    }
    socket.join('u:' + user);

    socket.on('send', (msg, ack) => {
      if (msg !== null && typeof msg === 'object' && msg.to !== undefined) {
        io.to('u:' + msg.to).emit('message', msg);
      }
      if (typeof ack === 'function') ack({ id: msg && msg.id });
    });
  });

  httpServer.listen(PORT, HOST, () => {
    process.stdout.write('listening ' + PORT + '\n');
  });

  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    // Hard stop if something hangs.
    setTimeout(() => process.exit(0), 3000).unref();
    io.close(() => {
      Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
