// Real failures thrown in a Node BullMQ 6 worker, for the error group tests.
//
//   node error_worker.mjs <redis-url> <queue> [--prefix bull]   (plan on stdin)
//
// The plan is {"jobs": [{"id": "t-0", "kind": "timeout", "n": 3012, "host": 7}, ...]}: each job is added
// (attempts 1), then one worker (concurrency 1, so jobs finish in the order added) runs them all:
//   timeout   throws new Error(`Timeout after ${n}ms contacting 10.0.0.${host}`)
//   type      reads .id of undefined inside chargeCustomer(): a real TypeError from one function
//   distinct  throws new Error(`${word} is not configured`) from one of five functions
//   ok        completes
// Prints one JSON line: {"failed": [{"id", "finishedOn", "failedReason"}], "completed": [...],
// "counts": queue.getJobCounts()}. Stops itself after 30 s.
import { Queue, Worker } from 'bullmq';

const [url, queueName, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const index = rest.indexOf(`--${name}`);
  return index >= 0 ? rest[index + 1] : fallback;
};
const prefix = option('prefix', 'bull');
const connection = { url };

const hardStop = setTimeout(() => {
  console.error('error_worker.mjs: hard timeout');
  process.exit(3);
}, 30000);
hardStop.unref();

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const plan = JSON.parse(Buffer.concat(chunks).toString() || '{"jobs": []}');

function chargeCustomer(order) {
  return order.customer.id;
}

const distinct = {
  alpha: () => { throw new Error('alpha is not configured'); },
  bravo: () => { throw new RangeError('bravo is out of range'); },
  charlie: () => { throw new SyntaxError('charlie could not be parsed'); },
  delta: () => { throw new Error('delta refused the request'); },
  echo: () => { throw new TypeError('echo is not a function'); },
};

const queue = new Queue(queueName, { connection, prefix });
await queue.addBulk(plan.jobs.map(job => ({
  name: job.kind,
  data: job,
  opts: { jobId: job.id, attempts: 1, removeOnFail: false, removeOnComplete: false },
})));

const failed = [];
const completed = [];
const worker = new Worker(
  queueName,
  async job => {
    const { kind, n, host, word } = job.data;
    if (kind === 'timeout') throw new Error(`Timeout after ${n}ms contacting 10.0.0.${host}`);
    if (kind === 'type') return chargeCustomer({ customer: undefined });
    if (kind === 'distinct') return distinct[word]();
    return { ok: true };
  },
  { connection, prefix, concurrency: 1, name: 'error-worker' },
);
worker.on('failed', job => job && failed.push({ id: job.id, finishedOn: job.finishedOn, failedReason: job.failedReason }));
worker.on('completed', job => completed.push(job.id));

const started = Date.now();
while (Date.now() - started < 25000) {
  await new Promise(resolve => setTimeout(resolve, 50));
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
  if (Object.values(counts).every(count => count === 0) && failed.length + completed.length >= plan.jobs.length) break;
}
await worker.close();
const counts = await queue.getJobCounts();
await queue.close();
console.log(JSON.stringify({ failed, completed, counts }));
process.exit(0);
