// Real Node BullMQ 6 producer and workers for the "no job lost" torture test (test_no_job_lost.py).
//
//   node torture.mjs <redis-url> <queue-name>
//
// The first line on stdin is the plan, one JSON object:
//   {"workers": W, "concurrency": C, "pauseMs": P, "batches": [[[name, data, opts], ...], ...]}
// W workers (named torture-w0 …) start; then each batch is added with addBulk, P ms apart. A job's data
// says how it behaves: it sleeps `ms` milliseconds, and fails while `fail` > attemptsMade (99: always).
// The queue keeps its whole events stream (maxLen 2,000,000), so the test can read what every script did.
// Prints one JSON line per step on stdout:
//   {"step": "ready"}                      workers connected
//   {"step": "produced", "ids": [...]}     every batch added: the ids BullMQ gave, in order
// then follows commands on stdin, one per line, each answered with one line:
//   add <JSON list of [name, data, opts]>  {"step": "added", "ids": [...]}
//   counts                                 {"step": "counts", "counts": getJobCounts(), "isPaused": ...}
//   close                                  {"step": "closed", "processed": {...}}; then it exits 0
// It stops itself (exit 3) after 280 s.
import readline from 'node:readline';
import { Queue, Worker } from 'bullmq';

const [url, name] = process.argv.slice(2);
if (!url || !name) {
  console.error('usage: node torture.mjs <redis-url> <queue-name>');
  process.exit(2);
}
setTimeout(() => {
  console.error('torture.mjs: timed out after 280 s');
  process.exit(3);
}, 280000).unref();

const connection = { url };
const say = message => process.stdout.write(`${JSON.stringify(message)}\n`);
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value;
};

const plan = JSON.parse(await nextLine());
const queue = new Queue(name, { connection, streams: { events: { maxLen: 2000000 } } });
await queue.waitUntilReady();

const processed = { completed: 0, failed: 0 };
const workers = [];
for (let w = 0; w < plan.workers; w++) {
  const worker = new Worker(
    name,
    async job => {
      const data = job.data || {};
      if (data.ms) await sleep(data.ms);
      if ((data.fail || 0) > job.attemptsMade) {
        throw new Error(`planned failure ${job.attemptsMade + 1} of job ${job.id}`);
      }
      return { ok: true, i: data.i };
    },
    { connection, concurrency: plan.concurrency, name: `torture-w${w}` },
  );
  worker.on('completed', () => processed.completed++);
  worker.on('failed', () => processed.failed++);
  worker.on('error', error => console.error(`worker ${w}: ${error}`));
  workers.push(worker);
}
await Promise.all(workers.map(worker => worker.waitUntilReady()));
say({ step: 'ready' });

const addAll = async specs => {
  const jobs = await queue.addBulk(specs.map(([jobName, data, opts]) => ({ name: jobName, data, opts })));
  return jobs.map(job => job.id);
};

const produced = [];
for (const batch of plan.batches) {
  produced.push(...(await addAll(batch)));
  await sleep(plan.pauseMs);
}
say({ step: 'produced', ids: produced });

for (;;) {
  const line = (await nextLine()).trim();
  if (line.startsWith('add ')) {
    say({ step: 'added', ids: await addAll(JSON.parse(line.slice(4))) });
  } else if (line === 'counts') {
    say({ step: 'counts', counts: await queue.getJobCounts(), isPaused: await queue.isPaused() });
  } else if (line === 'close') {
    await Promise.all(workers.map(worker => worker.close()));
    await queue.close();
    say({ step: 'closed', processed });
    process.exit(0);
  } else {
    console.error(`torture.mjs: unknown command ${JSON.stringify(line)}`);
    process.exit(2);
  }
}
