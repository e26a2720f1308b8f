// Bull Board over the benchmark's queues, as its README sets it up with Express.
//
//   node bullboard.mjs <redis-url> <port> <queue names JSON file> [per-queue|shared]
//
// Serves the UI and its API at http://127.0.0.1:<port>/ (no auth: Bull Board has none of its own).
// `per-queue` (the default) gives every BullMQ Queue its own connection options, as Bull Board's
// README does (`new Queue(name, { connection: { host, port } })`): one ioredis connection per queue.
// `shared` passes one ioredis instance to every Queue: the same commands, fewer sockets, and a
// CLIENT LIST (one per queue, for the "no workers" warning) that lists a handful of clients instead
// of hundreds. Prints "listening <port>" on stdout once it accepts requests.
import { readFileSync } from 'node:fs';

import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';

const [url, port, namesFile, mode = 'per-queue'] = process.argv.slice(2);
if (!url || !port || !namesFile || !['per-queue', 'shared'].includes(mode)) {
  console.error('usage: node bullboard.mjs <redis-url> <port> <queue names JSON file> [per-queue|shared]');
  process.exit(2);
}
const names = JSON.parse(readFileSync(namesFile, 'utf8'));
const { hostname, port: redisPort, pathname } = new URL(url);
const options = { host: hostname, port: Number(redisPort), db: Number(pathname.slice(1) || 0) };
const shared = mode === 'shared' ? new Redis({ ...options, maxRetriesPerRequest: null }) : null;
const queues = names.map(name => new Queue(name, { connection: shared ?? options }));

const serverAdapter = new ExpressAdapter();
serverAdapter.setBasePath('/');
createBullBoard({ queues: queues.map(queue => new BullMQAdapter(queue)), serverAdapter });

const app = express();
app.use('/', serverAdapter.getRouter());
const server = app.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${port}`);
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
