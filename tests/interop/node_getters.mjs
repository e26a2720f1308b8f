// Reads a queue state with Node BullMQ's own getters (6 here, or 5 with BULLMQ_DIR=tests/interop5:
// see bullmq_of.mjs), as the reference the Python readers are compared against.
//
//   node build_state.mjs <redis-url> | node node_getters.mjs <redis-url>
//
// stdin:  {"queues": [{"prefix": ..., "name": ...}, ...]} (build_state.mjs output)
// stdout: one JSON document, {"version", "queues": [{prefix, name, isPaused, counts, schedulers, ids,
//         jobs}, ...]}
// Values that are undefined in Node are written as null.
import { bullmq, version } from './bullmq_of.mjs';

const { Queue } = bullmq;

const STATES = [
  'waiting',
  'active',
  'prioritized',
  'delayed',
  'completed',
  'failed',
  'waiting-children',
];
const JOB_FIELDS = [
  'id',
  'name',
  'data',
  'opts',
  'progress',
  'delay',
  'priority',
  'timestamp',
  'processedOn',
  'finishedOn',
  'attemptsMade',
  'attemptsStarted',
  'failedReason',
  'stacktrace',
  'returnvalue',
  'parentKey',
  'parent',
  'processedBy',
];
const TOTAL_TIMEOUT_MS = 20000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node node_getters.mjs <redis-url>  (queue list JSON on stdin)');
  process.exit(2);
}

setTimeout(() => {
  console.error(`node_getters: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function describeJob(queue, job, state) {
  const out = {};
  for (const field of JOB_FIELDS) {
    out[field] = job[field];
  }
  const { logs, count } = await queue.getJobLogs(job.id, 0, -1, true);
  out.logs = { count, items: logs };
  out.state = await job.getState();
  out.dependencies =
    state === 'waiting-children' ? await job.getDependenciesCount() : null;
  return out;
}

async function describeQueue(queue, prefix, name) {
  const result = {
    prefix,
    name,
    isPaused: await queue.isPaused(),
    counts: await queue.getJobCounts(),
    // Soonest first, as the dashboard lists them.
    schedulers: await queue.getJobSchedulers(0, -1, true),
    ids: {},
    jobs: {},
  };
  // Every state getJobCounts() names: BullMQ 5 adds `paused` (its getJobs(['waiting']) reads `wait`
  // and then `paused`; getJobs(['paused']) only `paused`).
  for (const state of new Set([...STATES, ...Object.keys(result.counts)])) {
    const jobs = await queue.getJobs([state], 0, -1, false);
    result.ids[state] = jobs.map(job => job.id);
    for (const job of jobs) {
      result.jobs[job.id] = await describeJob(queue, job, state);
    }
  }
  return result;
}

let exitCode = 0;
const queues = [];
const output = { version, queues: [] };
try {
  const input = JSON.parse(await readStdin());
  for (const { prefix, name } of input.queues) {
    // skipMetasUpdate: a reader that writes nothing (a Queue otherwise sets meta's `version` to its
    // own, over what the writer left, e.g. none from the Python package).
    const queue = new Queue(name, { connection: { url }, prefix, skipMetasUpdate: true });
    queue.on('error', err => console.error(`queue ${prefix}:${name} error:`, err));
    queues.push(queue);
    output.queues.push(await describeQueue(queue, prefix, name));
  }
} catch (err) {
  console.error('node_getters failed:', err);
  exitCode = 1;
} finally {
  for (const queue of queues) {
    try {
      await queue.close();
    } catch (err) {
      console.error('close failed:', err);
      exitCode = exitCode || 1;
    }
  }
}
if (exitCode === 0) {
  const text = JSON.stringify(output, (_key, value) =>
    value === undefined ? null : value,
  );
  process.stdout.write(text + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
