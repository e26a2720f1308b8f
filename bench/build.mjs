// Builds the benchmark data in an empty Redis with the real Node BullMQ 6.
//
//   node build.mjs <redis-url> '<spec JSON>'
//
// Specs (one per run; each scenario has its own throwaway Redis):
//   {"kind": "overview", "queues": 200, "waiting": 10}
//       queues q0000 … q0199, each with `waiting` jobs added with queue.addBulk.
//   {"kind": "completed", "queue": "jobs", "count": 1000000}
//       one queue whose jobs are added with queue.addBulk in chunks and then moved from `wait` to
//       `completed` by complete.lua (see bench/README.md for why that is equivalent for reads).
//   {"kind": "detail", "queue": "big", "bytes": 2097152, "others": 30}
//       one queue with `others` small completed jobs and one completed job whose data is a JSON
//       object of about `bytes` bytes (added last, so it is the newest completed job).
//
// Prints ONE JSON line on stdout: {"queues": [names], "jobIds": {...}, "seconds": …}; progress on stderr.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHUNK = 5000; // jobs per addBulk call
const IN_FLIGHT = 2; // addBulk calls in flight at once
const MOVE_BATCH = 5000; // jobs moved to `completed` per complete.lua call

const [url, rawSpec] = process.argv.slice(2);
if (!url || !rawSpec) {
  console.error("usage: node build.mjs <redis-url> '<spec JSON>'");
  process.exit(2);
}
const spec = JSON.parse(rawSpec);
const started = Date.now();
const client = new Redis(url, { maxRetriesPerRequest: null });
client.defineCommand('completeJobs', {
  numberOfKeys: 1,
  lua: readFileSync(join(HERE, 'complete.lua'), 'utf8'),
});

function log(message) {
  console.error(`[build ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

/** Adds `count` jobs made by `make(i)` with addBulk, CHUNK at a time, IN_FLIGHT chunks at once. */
async function addInChunks(queue, count, make) {
  let next = 0;
  let done = 0;
  async function lane() {
    while (next < count) {
      const start = next;
      const end = Math.min(count, start + CHUNK);
      next = end;
      const jobs = [];
      for (let i = start; i < end; i++) {
        jobs.push(make(i));
      }
      await queue.addBulk(jobs);
      done += end - start;
      if (count >= 100000 && done % 100000 < CHUNK) {
        log(`${queue.name}: ${done} jobs added`);
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

/** Moves every job of `wait` to `completed` as a worker would have (complete.lua). */
async function completeAll(queue) {
  const keyPrefix = `${queue.qualifiedName}:`;
  let moved = 0;
  for (;;) {
    const n = await client.completeJobs(keyPrefix, MOVE_BATCH);
    if (n === 0) {
      break;
    }
    moved += n;
    if (moved % 100000 < MOVE_BATCH) {
      log(`${queue.name}: ${moved} jobs completed`);
    }
  }
  return moved;
}

function smallJob(i, base) {
  return {
    name: 'send-receipt',
    data: { to: `user${i}@example.com`, template: 'receipt', order: 100000 + i },
    // Creation times 1 ms apart, ending about a minute ago, so ages and durations look like a real run.
    opts: { timestamp: base + i },
  };
}

async function build() {
  const queues = [];
  const jobIds = {};
  if (spec.kind === 'overview') {
    const width = Math.max(4, String(spec.queues - 1).length);
    for (let q = 0; q < spec.queues; q++) {
      const name = `q${String(q).padStart(width, '0')}`;
      const queue = new Queue(name, { connection: client });
      const jobs = [];
      for (let i = 0; i < spec.waiting; i++) {
        jobs.push({ name: 'task', data: { queue: name, n: i } });
      }
      await queue.addBulk(jobs);
      queues.push(name);
    }
    log(`${spec.queues} queues with ${spec.waiting} waiting jobs each`);
  } else if (spec.kind === 'completed') {
    const queue = new Queue(spec.queue, { connection: client });
    const base = Date.now() - spec.count - 60000;
    await addInChunks(queue, spec.count, i => smallJob(i, base));
    jobIds.moved = await completeAll(queue);
    queues.push(spec.queue);
  } else if (spec.kind === 'detail') {
    const queue = new Queue(spec.queue, { connection: client });
    const base = Date.now() - spec.others - 60000;
    await addInChunks(queue, spec.others, i => smallJob(i, base));
    // About `bytes` bytes of JSON: a list of records, as a document-processing job might carry.
    const record = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ';
    const rows = [];
    let size = 0;
    for (let i = 0; size < spec.bytes - 64; i++) {
      const row = { line: i, text: record };
      size += JSON.stringify(row).length + 1;
      rows.push(row);
    }
    const big = await queue.add('ocr-document', { document: 'scan-0001.pdf', rows });
    jobIds.big = big.id;
    jobIds.bigDataBytes = Buffer.byteLength(JSON.stringify(big.data));
    jobIds.moved = await completeAll(queue);
    queues.push(spec.queue);
  } else {
    throw new Error(`unknown spec kind ${spec.kind}`);
  }
  return { queues, jobIds };
}

try {
  const result = await build();
  const keys = await client.dbsize();
  const memory = (await client.info('memory')).match(/used_memory:(\d+)/)[1];
  console.log(
    JSON.stringify({
      ...result,
      keys,
      usedMemory: Number(memory),
      seconds: (Date.now() - started) / 1000,
    }),
  );
} finally {
  client.disconnect();
}
