// A named Node BullMQ 6 worker that holds one job while the dashboard looks at it.
//
//   node held_worker.mjs <redis-url> <queue> <worker name>
//
// Adds job "held-1", starts the worker, prints {"step": "active", "job": "held-1"} once it processes
// it, then waits for "release" on stdin, completes the job, prints {"step": "done"} and exits.
import readline from 'node:readline';
import { Queue, Worker } from 'bullmq';

const [url, name, workerName] = process.argv.slice(2);
setTimeout(() => {
  console.error('held_worker.mjs: timed out after 60 s');
  process.exit(3);
}, 60000).unref();

const connection = { url };
const say = message => process.stdout.write(`${JSON.stringify(message)}\n`);
let release;
const released = new Promise(resolve => (release = resolve));
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', line => line.trim() === 'release' && release());

const queue = new Queue(name, { connection });
await queue.add('hold', { i: 1 }, { jobId: 'held-1' });
const worker = new Worker(
  name,
  async job => {
    say({ step: 'active', job: job.id });
    await released;
    return { ok: true };
  },
  { connection, name: workerName },
);
await new Promise(resolve => worker.on('completed', resolve));
await worker.close();
await queue.close();
lines.close();
say({ step: 'done' });
process.exit(0);
