// Reads a queue state with Node BullMQ's own getters, as the reference the
// Python readers are compared against.
//
//   node build_state.mjs <redis-url> | node node_getters.mjs <redis-url>
//
// stdin:  {"queues": [{"prefix": ..., "name": ...}, ...]} (build_state.mjs output)
// stdout: one JSON document, {"queues": [{prefix, name, isPaused, counts, ids, jobs}, ...]}
// Values that are undefined in Node are written as null.
import { Queue } from 'bullmq';

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
    ids: {},
    jobs: {},
  };
  for (const state of STATES) {
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
const output = { queues: [] };
try {
  const input = JSON.parse(await readStdin());
  for (const { prefix, name } of input.queues) {
    const queue = new Queue(name, { connection: { url }, prefix });
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
