// Steady BullMQ traffic on many queues, for the load and soak runs (bench/load.py, bench/soak.py).
//
//   node traffic.mjs <redis-url> <queues> <jobs-per-second>
//
// Queues q0000 … each get a Worker (concurrency 2) of the real Node BullMQ; one producer adds jobs
// to random queues on a fixed schedule. Jobs take 20-300 ms; 5% fail, 10% are delayed 1-3 s, 5% have a
// priority and 10% report progress, so every state's counts move. Finished jobs are trimmed
// (removeOnComplete/removeOnFail) so Redis stays the same size however long it runs.
// Prints {"seeded": queues} once every queue has its first job, then one JSON line on stdout every 10 s
// and a last one after SIGTERM/SIGINT: {"produced": n, "completed": n, "failed": n, "seconds": s, "final": bool}.
// The BullMQ copy: $BULLMQ_DIR/node_modules/bullmq (a folder holding one), else bench/'s own.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(resolve(process.env.BULLMQ_DIR || here), 'node_modules', 'bullmq');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const { Queue, Worker } = await import(pathToFileURL(join(root, manifest.main)).href);
// ioredis is bullmq's own dependency: load it from beside the bullmq copy used.
const { Redis } = await import(
  pathToFileURL(join(root, '..', 'ioredis', JSON.parse(readFileSync(join(root, '..', 'ioredis', 'package.json'), 'utf8')).main)).href
);

const [url, rawQueues, rawRate] = process.argv.slice(2);
const count = Number(rawQueues);
const rate = Number(rawRate);
if (!url || !(count > 0) || !(rate > 0)) {
  console.error('usage: node traffic.mjs <redis-url> <queues> <jobs-per-second>');
  process.exit(2);
}

const connection = new Redis(url, { maxRetriesPerRequest: null });
const names = Array.from({ length: count }, (_, index) => `q${String(index).padStart(4, '0')}`);
const queues = names.map(name => new Queue(name, { connection }));
const stats = { produced: 0, completed: 0, failed: 0 };
const started = Date.now();
const sleep = ms => new Promise(done => setTimeout(done, ms));

const workers = names.map(name => {
  const worker = new Worker(
    name,
    async job => {
      if (job.data.progress) await job.updateProgress(50);
      await sleep(20 + Math.random() * 280);
      if (job.data.fail) throw new Error('simulated failure');
      return { ok: true };
    },
    { connection, concurrency: 2 },
  );
  worker.on('completed', () => (stats.completed += 1));
  worker.on('failed', () => (stats.failed += 1));
  worker.on('error', error => console.error(`worker ${name}: ${error.message}`));
  return worker;
});

function report(final) {
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ ...stats, seconds, final })}\n`);
}
const reporter = setInterval(() => report(false), 10000);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(reporter);
  await Promise.all(workers.map(worker => worker.close(true)));
  await Promise.all(queues.map(queue => queue.close()));
  await connection.quit();
  report(true);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// One job in every queue first, so every queue exists before anyone looks.
await Promise.all(queues.map(queue => queue.add('seed', { n: -1 }, { removeOnComplete: { count: 200 } })));
stats.produced += count;
process.stdout.write(`${JSON.stringify({ seeded: count })}\n`);

// On a fixed schedule (not "add, then wait"), so a slow add does not lower the rate.
const scheduled = Date.now();
while (!stopping) {
  const index = Math.floor(Math.random() * count);
  const roll = Math.random();
  const opts = { removeOnComplete: { count: 200 }, removeOnFail: { count: 100 }, attempts: 1 };
  if (roll < 0.1) opts.delay = 1000 + Math.random() * 2000;
  else if (roll < 0.15) opts.priority = 1 + Math.floor(Math.random() * 10);
  const data = { n: stats.produced, fail: Math.random() < 0.05, progress: Math.random() < 0.1 };
  try {
    await queues[index].add('work', data, opts);
    stats.produced += 1;
  } catch (error) {
    if (!stopping) console.error(`add: ${error.message}`);
  }
  const due = scheduled + ((stats.produced - count) / rate) * 1000;
  const wait = due - Date.now();
  if (wait > 0) await sleep(wait);
}
