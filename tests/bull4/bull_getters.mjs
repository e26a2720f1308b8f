// Reads a queue state with Node Bull 4's own getters, as the reference the
// Python readers of Bull 3/4 queues are compared against.
//
//   node build_bull_state.mjs <redis-url> | node bull_getters.mjs <redis-url>
//
// stdin:  {"queues": [{"prefix": ..., "name": ...}, ...]} (build_bull_state.mjs output)
// stdout: one JSON document, {"queues": [{prefix, name, isPaused, counts, ids, idsNewestFirst,
//         waitingAndPaused, countsPerPriority, repeatable, metrics, stalledCount, jobs}, ...]}
// Values that are undefined in Node are written as null.
//
// Bull's getters take a Redis state name: 'waiting' (an alias of the `wait`
// list), 'active', 'paused' (lists), 'delayed', 'completed', 'failed' (zsets).
// There is no 'prioritized' state: prioritized jobs are in `wait`/`paused`.
import Queue from 'bull';

const STATES = ['waiting', 'active', 'paused', 'delayed', 'completed', 'failed'];
// Bull's own named getters (getWaiting, getActive, getDelayed, getCompleted,
// getFailed) list oldest first for lists and the delayed set (asc = true) and
// newest first for the finished sets (asc = false).
const ASC = {
  waiting: true,
  active: true,
  paused: true,
  delayed: true,
  completed: false,
  failed: false,
};
const JOB_FIELDS = [
  'id',
  'name',
  'data',
  'opts',
  'delay',
  'timestamp',
  'processedOn',
  'finishedOn',
  'retriedOn',
  'attemptsMade',
  'failedReason',
  'stacktrace',
  'returnvalue',
  'debounceId',
];
const TOTAL_TIMEOUT_MS = 20000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node bull_getters.mjs <redis-url>  (queue list JSON on stdin)');
  process.exit(2);
}

setTimeout(() => {
  console.error(`bull_getters: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function idsOf(jobs) {
  // getJobs answers null for an id whose hash is gone.
  return jobs.map(job => (job ? String(job.id) : null));
}

async function describeJob(queue, job) {
  const out = {};
  for (const field of JOB_FIELDS) {
    out[field] = job[field];
  }
  out.id = String(job.id);
  // Bull's job.progress() with no argument reads it (updateProgress is BullMQ's).
  out.progress = job.progress();
  const { logs, count } = await queue.getJobLogs(job.id, 0, -1, true);
  out.logs = { count, items: logs };
  out.state = await job.getState();
  // Bull's lock is a plain key beside the job's hash; while it exists the
  // removeJob and cleanJobsInSet scripts leave the job alone.
  out.locked = (await queue.client.exists(job.lockKey())) === 1;
  // The hash exactly as stored, for the field names and encodings.
  out.raw = await queue.client.hgetall(queue.toKey(job.id));
  return out;
}

async function describeQueue(queue, prefix, name) {
  const result = {
    prefix,
    name,
    isPaused: await queue.isPaused(),
    counts: await queue.getJobCounts(),
    ids: {},
    idsNewestFirst: {},
    waitingAndPaused: idsOf(await queue.getWaiting()),
    countsPerPriority: null,
    repeatable: await queue.getRepeatableJobs(0, -1, true),
    metrics: {
      completed: await queue.getMetrics('completed'),
      failed: await queue.getMetrics('failed'),
    },
    stalledCount: await queue.getStalledCount(),
    jobs: {},
  };
  const seen = [];
  for (const state of STATES) {
    const jobs = await queue.getJobs([state], 0, -1, ASC[state]);
    result.ids[state] = idsOf(jobs);
    // What getJobs answers with its default order (asc = false), as
    // dashboards built on Bull (bull-board, Arena) call it.
    result.idsNewestFirst[state] = idsOf(await queue.getJobs([state], 0, -1));
    for (const job of jobs) {
      if (job) {
        seen.push(job);
      }
    }
  }
  const priorities = await queue.client.zrange(queue.toKey('priority'), 0, -1, 'WITHSCORES');
  const wanted = [0];
  for (let i = 1; i < priorities.length; i += 2) {
    wanted.push(Number(priorities[i]));
  }
  result.countsPerPriority = await queue.getCountsPerPriority(wanted);
  for (const job of seen) {
    result.jobs[String(job.id)] = await describeJob(queue, job);
  }
  return result;
}

let exitCode = 0;
const queues = [];
const output = { queues: [] };
try {
  const input = JSON.parse(await readStdin());
  for (const { prefix, name } of input.queues) {
    const queue = new Queue(name, url, { prefix });
    queue.on('error', err => console.error(`queue ${prefix}:${name} error:`, err));
    queues.push(queue);
    await queue.isReady();
    output.queues.push(await describeQueue(queue, prefix, name));
  }
} catch (err) {
  console.error('bull_getters failed:', err);
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
  const text = JSON.stringify(output, (_key, value) => (value === undefined ? null : value));
  process.stdout.write(text + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
