// What Node BullMQ's own getters say about one queue and some job ids, for the attack tests.
//
//   echo '{"name": "attack-ids", "ids": ["..", "w1"]}' | node attack_getters.mjs <redis-url>
//
// stdin:  {"name": <queue>, "prefix": "bull" (default), "ids": [<job id>, ...]}
// stdout: one JSON line:
//   counts      queue.getJobCounts(), or null when it threw (countsError has the message)
//   waiting     ids of getJobs(['waiting'], 0, -1, true); failed: the same for failed
//   jobs        {<id>: null when getJob(id) finds nothing, else {state, name, attemptsMade}}
// A getter that throws (a queue with a wrong-typed key) is reported, not a failure of the script.
import { Queue } from 'bullmq';

const TOTAL_TIMEOUT_MS = 20000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node attack_getters.mjs <redis-url>  ({"name", "ids"} JSON on stdin)');
  process.exit(2);
}

setTimeout(() => {
  console.error(`attack_getters: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function ids(queue, state) {
  try {
    return (await queue.getJobs([state], 0, -1, true)).map(job => job.id);
  } catch (err) {
    return { error: String(err.message || err) };
  }
}

let exitCode = 0;
let queue;
const output = { counts: null, countsError: null, waiting: [], failed: [], jobs: {} };
try {
  const input = JSON.parse(await readStdin());
  queue = new Queue(input.name, { connection: { url }, prefix: input.prefix || 'bull' });
  queue.on('error', err => console.error(`queue ${input.name} error:`, err));
  try {
    output.counts = await queue.getJobCounts();
  } catch (err) {
    output.countsError = String(err.message || err);
  }
  output.waiting = await ids(queue, 'waiting');
  output.failed = await ids(queue, 'failed');
  for (const jobId of input.ids || []) {
    const job = await queue.getJob(jobId);
    output.jobs[jobId] = job
      ? { state: await job.getState(), name: job.name, attemptsMade: job.attemptsMade }
      : null;
  }
} catch (err) {
  console.error('attack_getters failed:', err);
  exitCode = 1;
} finally {
  if (queue) {
    try {
      await queue.close();
    } catch (err) {
      console.error('close failed:', err);
      exitCode = exitCode || 1;
    }
  }
}
if (exitCode === 0) {
  process.stdout.write(JSON.stringify(output) + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
