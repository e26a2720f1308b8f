// Real Node BullMQ 6 workers finishing jobs in batches, and what Node's own getMetrics says afterwards.
//
//   node metrics_worker.mjs <redis-url> <queue> [--prefix bull] [--metrics <maxDataPoints>]
//                           [--keep <removeOnComplete count>] [--batches JSON]
//
// --batches is a list of {"minutesAgo": m, "complete": c, "fail": f}: for each, c jobs that complete
// and f that fail (attempts 1) are added and run by a worker while this process's clock (Date.now,
// which BullMQ stamps finishedOn and the metrics' minutes with) is set m minutes back, so one run
// spreads its jobs over several minutes of metrics. Events stream ids are Redis's own clock.
// With --metrics the worker records metrics ({maxDataPoints}); with --keep, removeOnComplete {count}.
// Prints one JSON line: {"completed": getMetrics('completed'), "failed": getMetrics('failed'),
// "counts": getJobCounts(), "finished": {"completed": n, "failed": n}}. Stops itself after 50 s.
import { Queue, Worker } from 'bullmq';

const [url, queueName, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const index = rest.indexOf(`--${name}`);
  return index >= 0 ? rest[index + 1] : fallback;
};
const prefix = option('prefix', 'bull');
const maxDataPoints = option('metrics', '');
const keep = option('keep', '');
const batches = JSON.parse(option('batches', '[{"minutesAgo": 0, "complete": 3, "fail": 1}]'));
const connection = { url };

const hardStop = setTimeout(() => {
  console.error('metrics_worker.mjs: hard timeout');
  process.exit(3);
}, 50000);
hardStop.unref();

const realNow = Date.now.bind(Date);
let offset = 0;
Date.now = () => realNow() + offset;

const queue = new Queue(queueName, { connection, prefix });
const finished = { completed: 0, failed: 0 };
const workerOptions = { connection, prefix, concurrency: 4, name: 'metrics-worker' };
if (maxDataPoints) workerOptions.metrics = { maxDataPoints: Number(maxDataPoints) };
if (keep) workerOptions.removeOnComplete = { count: Number(keep) };
const worker = new Worker(
  queueName,
  async job => {
    if (job.data.fail) throw new Error(`failed ${job.id}`);
    return { ok: job.id };
  },
  workerOptions,
);
worker.on('completed', () => { finished.completed += 1; });
worker.on('failed', () => { finished.failed += 1; });

let expected = 0;
for (const batch of batches) {
  offset = -batch.minutesAgo * 60000;
  const jobs = [];
  for (let n = 0; n < batch.complete; n += 1) jobs.push({ name: 'ok', data: { fail: false }, opts: { attempts: 1 } });
  for (let n = 0; n < batch.fail; n += 1) jobs.push({ name: 'bad', data: { fail: true }, opts: { attempts: 1 } });
  expected += jobs.length;
  if (jobs.length) await queue.addBulk(jobs);
  while (finished.completed + finished.failed < expected) {
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}
await worker.close();
offset = 0;
const completed = await queue.getMetrics('completed');
const failed = await queue.getMetrics('failed');
const counts = await queue.getJobCounts();
await queue.close();
console.log(JSON.stringify({ completed, failed, counts, finished }));
process.exit(0);
