// A real Node BullMQ 6 producer and worker for the action interop tests.
//
//   node worker.mjs <redis-url> <queue> [--prefix bull] [--produce N] [--fail-every K]
//                   [--until-idle] [--max-ms MS] [--concurrency C]
//
// --produce N   adds jobs s-0 … s-(N-1) over the run (data {i, fail: i % K === 0})
// The worker completes jobs (returnvalue {ok: true, i}) and fails those whose data.fail is true.
// It stops when --until-idle and the queue has nothing waiting, prioritized, delayed or active
// (and production is over), or after --max-ms. Prints one JSON line:
// {"added": [...], "completed": [...], "failed": [...]} (ids of events this worker saw).
import { Queue, Worker } from 'bullmq';

const [url, queueName, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const index = rest.indexOf(`--${name}`);
  return index >= 0 ? rest[index + 1] : fallback;
};
const flag = name => rest.includes(`--${name}`);
const prefix = option('prefix', 'bull');
const produce = Number(option('produce', '0'));
const failEvery = Number(option('fail-every', '0'));
const maxMs = Number(option('max-ms', '20000'));
const concurrency = Number(option('concurrency', '2'));
const connection = { url };

const hardStop = setTimeout(() => {
  console.error('worker.mjs: hard timeout');
  process.exit(3);
}, maxMs + 10000);
hardStop.unref();

const added = [];
const completed = [];
const failed = [];
const queue = new Queue(queueName, { connection, prefix });
const worker = new Worker(
  queueName,
  async job => {
    await new Promise(resolve => setTimeout(resolve, 3));
    if (job.data && job.data.fail) throw new Error(`refused by the Node worker: ${job.id}`);
    return { ok: true, i: job.data ? job.data.i : null };
  },
  { connection, prefix, concurrency, name: 'interop-node-worker' },
);
worker.on('completed', job => completed.push(job.id));
worker.on('failed', job => job && failed.push(job.id));

async function producer() {
  for (let i = 0; i < produce; i++) {
    const job = await queue.add('stream', { i, fail: failEvery > 0 && i % failEvery === 0 }, { jobId: `s-${i}` });
    added.push(job.id);
    if (i % 10 === 0) await new Promise(resolve => setTimeout(resolve, 5));
  }
}

const started = Date.now();
await worker.waitUntilReady();
await producer();
while (Date.now() - started < maxMs) {
  await new Promise(resolve => setTimeout(resolve, 100));
  if (flag('until-idle')) {
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    if (Object.values(counts).every(count => count === 0)) break;
  }
}
await worker.close();
await queue.close();
console.log(JSON.stringify({ added, completed, failed }));
process.exit(0);
