// Many small queues written by the real Node BullMQ 6 (the Prometheus scrape's scale test).
//
//   node many_queues.mjs <redis-url> <count>
//
// Queues q00000 … with one job each, all over one shared connection; prints one JSON line:
// {"queues": count, "seconds": …}.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const [url, rawCount] = process.argv.slice(2);
const count = Number(rawCount);
const started = Date.now();
const connection = new Redis(url, { maxRetriesPerRequest: null });
const IN_FLIGHT = 50;

async function one(index) {
  const name = `q${String(index).padStart(5, '0')}`;
  const queue = new Queue(name, { connection });
  await queue.add('job', { index });
  await queue.close();
}

for (let start = 0; start < count; start += IN_FLIGHT) {
  const batch = [];
  for (let index = start; index < Math.min(count, start + IN_FLIGHT); index++) batch.push(one(index));
  await Promise.all(batch);
}
await connection.quit();
console.log(JSON.stringify({ queues: count, seconds: (Date.now() - started) / 1000 }));
process.exit(0);
