// Failures made by a real Node BullMQ 6 worker, and what Node's own getters say of them, for the
// overview's failure recency (last failure, failures of the last hour).
//
//   node failure_recency.mjs <redis-url> <queue> [--prefix bull]
//
// Adds, in this order, and runs with one worker (concurrency 1, so they finish in this order):
//   f-0, f-1     fail (attempts 1)
//   r-0          fails twice (attempts 2, no backoff): retried, then failed for good
//   gone-0       fails with removeOnFail: true (not in the failed list afterwards)
//   ok-0         completes
// Prints one JSON line: {"newest": getFailed(0, 0)[0] as {id, finishedOn}, "failed": getFailed() as
// [{id, finishedOn}], "now": Date.now() after the reads, "counts": getJobCounts()}. Stops itself after 30 s.
import { Queue, Worker } from 'bullmq';

const [url, queueName, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const index = rest.indexOf(`--${name}`);
  return index >= 0 ? rest[index + 1] : fallback;
};
const prefix = option('prefix', 'bull');
const connection = { url };

const hardStop = setTimeout(() => {
  console.error('failure_recency.mjs: hard timeout');
  process.exit(3);
}, 30000);
hardStop.unref();

const plan = [
  { id: 'f-0', opts: { attempts: 1 } },
  { id: 'f-1', opts: { attempts: 1 } },
  { id: 'r-0', opts: { attempts: 2 } },
  { id: 'gone-0', opts: { attempts: 1, removeOnFail: true } },
  { id: 'ok-0', opts: { attempts: 1 } },
];

const queue = new Queue(queueName, { connection, prefix });
await queue.addBulk(plan.map(job => ({ name: 'recency', data: {}, opts: { jobId: job.id, ...job.opts } })));

let done = 0;
const worker = new Worker(
  queueName,
  async job => {
    if (job.id === 'ok-0') return 'ok';
    throw new Error(`failed ${job.id}`);
  },
  { connection, prefix, concurrency: 1, name: 'recency-worker' },
);
worker.on('failed', job => {
  if (job && job.attemptsMade >= (job.opts.attempts || 1)) done += 1;
});
worker.on('completed', () => { done += 1; });

const started = Date.now();
while (done < plan.length && Date.now() - started < 25000) {
  await new Promise(resolve => setTimeout(resolve, 50));
}
await worker.close();
const [newest] = await queue.getFailed(0, 0);
const failed = await queue.getFailed(0, -1);
const counts = await queue.getJobCounts();
const now = Date.now();
await queue.close();
const brief = job => ({ id: job.id, finishedOn: job.finishedOn });
console.log(JSON.stringify({ newest: newest ? brief(newest) : null, failed: failed.map(brief), now, counts }));
process.exit(0);
