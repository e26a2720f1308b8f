// Real Node BullMQ 6 producing and processing jobs step by step while the dashboard watches live.
//
//   node live_worker.mjs <redis-url> <queue-name> [prefix]
//
// Adds "bad-1" (fails: "card declined") and "ok-1" (reports progress 50 and a log line, then waits),
// then follows commands on stdin, one per line:
//   go       start a worker (concurrency 2)
//   release  let "ok-1" finish (log "all done", progress 100, return value)
// Prints one JSON line on stdout per step: {"step": "added"}, {"step": "halfway"},
// {"step": "done", "states": {...}}; exits 0 once every connection is closed.
import readline from 'node:readline';
import { Queue, Worker } from 'bullmq';

const [url, name, prefix = 'bull'] = process.argv.slice(2);
if (!url || !name) {
  console.error('usage: node live_worker.mjs <redis-url> <queue-name> [prefix]');
  process.exit(2);
}
setTimeout(() => {
  console.error('live_worker: timed out after 90 s');
  process.exit(3);
}, 90000).unref();

const connection = { url };
const say = message => process.stdout.write(`${JSON.stringify(message)}\n`);

const commands = {};
function command(word) {
  if (!commands[word]) {
    let resolve;
    commands[word] = { promise: new Promise(r => (resolve = r)), resolve };
  }
  return commands[word];
}
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', line => command(line.trim()).resolve());

const queue = new Queue(name, { connection, prefix });
await queue.add('charge', { amount: 42 }, { jobId: 'bad-1', attempts: 1 });
await queue.add('resize', { image: 'cat.png' }, { jobId: 'ok-1' });
say({ step: 'added', jobs: ['bad-1', 'ok-1'] });

await command('go').promise;
const states = {};
let finish;
const finished = new Promise(resolve => (finish = resolve));
const worker = new Worker(
  name,
  async job => {
    if (job.name === 'charge') {
      throw new Error('card declined');
    }
    await job.updateProgress(50);
    await job.log('halfway there');
    say({ step: 'halfway', job: job.id });
    await command('release').promise;
    await job.log('all done');
    await job.updateProgress(100);
    return { resized: true };
  },
  { connection, prefix, concurrency: 2 },
);
const settle = state => job => {
  states[job.id] = state;
  if (Object.keys(states).length === 2) finish();
};
worker.on('completed', settle('completed'));
worker.on('failed', settle('failed'));
await finished;
await worker.close();
await queue.close();
lines.close();
say({ step: 'done', states });
