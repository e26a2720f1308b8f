// Builds a deterministic BullMQ state in Redis with the real Node BullMQ (6 here, or 5 with
// BULLMQ_DIR=tests/interop5: see bullmq_of.mjs).
//
//   node build_state.mjs <redis-url>
//
// Prints ONE JSON line on stdout: {"queues": [{"prefix": ..., "name": ...}, ...]}
// and exits 0 once every connection is closed. Anything else goes to stderr.
// The Redis database is expected to be empty (the Python tests use a throwaway
// server); every key of the queues it builds is deleted first anyway, so a
// rerun against the same Redis gives the same shape.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bullmq, version } from './bullmq_of.mjs';

const { FlowProducer, Queue, Worker } = bullmq;
// The ioredis that this BullMQ loads itself, resolved from its package as bullmq_of.mjs finds it.
const here = dirname(fileURLToPath(import.meta.url));
const bullmqPackage = join(resolve(process.env.BULLMQ_DIR || here), 'node_modules', 'bullmq', 'package.json');
const { Redis } = createRequire(bullmqPackage)('ioredis');

const HOUR = 3600000;
const STEP_TIMEOUT_MS = 10000; // one job / one step
const TOTAL_TIMEOUT_MS = 28000; // the whole script

const url = process.argv[2];
if (!url) {
  console.error('usage: node build_state.mjs <redis-url>');
  process.exit(2);
}

// Never hang: a hard deadline for the whole script.
setTimeout(() => {
  console.error(`build_state: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

const connection = { url };
const created = []; // {prefix, name} in creation order
const closers = []; // everything to close at the end (in reverse order)

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const QUEUES = [
  { prefix: 'bull', name: 'interop-main' },
  { prefix: 'bull', name: 'interop-paused' },
  { prefix: 'bull', name: 'interop-flow-parent' },
  { prefix: 'bull', name: 'interop-flow-children' },
  { prefix: '{tenant-a}', name: 'interop-tenant' },
  { prefix: 'bull', name: 'interop-scheduled' },
  // BullMQ 5 only: BullMQ 6 has no `queue.add(..., {repeat})`.
  { prefix: 'bull', name: 'interop-legacy-repeat' },
];

function globEscape(text) {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Deletes every key of the queues this script builds. Not queue.obliterate():
 * it keeps a parent that still has pending children, and obliterating the
 * children queue afterwards moves that orphan parent to `wait`.
 */
async function wipeQueues() {
  const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  try {
    await client.connect();
    for (const { prefix, name } of QUEUES) {
      const match = `${globEscape(prefix)}:${globEscape(name)}:*`;
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length) {
          await client.del(...keys);
        }
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}

async function openQueue(name, prefix = 'bull') {
  if (!QUEUES.some(q => q.prefix === prefix && q.name === name)) {
    throw new Error(`${prefix}:${name} is missing from QUEUES`);
  }
  const queue = new Queue(name, { connection, prefix });
  queue.on('error', err => console.error(`queue ${prefix}:${name} error:`, err));
  closers.push(() => queue.close());
  await queue.waitUntilReady();
  created.push({ prefix, name });
  return queue;
}

/**
 * Remembers the final outcome of every job a running worker handles, so a
 * caller can add a job and then wait for exactly that job to be finished
 * (completed, or failed with no retry left) without racing the events.
 */
class FinishTracker {
  constructor(worker) {
    this.outcomes = new Map();
    this.waiters = new Map();
    worker.on('completed', job => this.settle(job.id, 'completed'));
    worker.on('failed', job => {
      // 'failed' fires on every failed attempt; finishedOn is only set when the
      // job really moved to the failed set (no retry left).
      if (job && job.finishedOn) {
        this.settle(job.id, 'failed');
      }
    });
    worker.on('error', err => console.error(`worker ${worker.name} error:`, err));
  }

  settle(jobId, outcome) {
    this.outcomes.set(jobId, outcome);
    const waiter = this.waiters.get(jobId);
    if (waiter) {
      this.waiters.delete(jobId);
      waiter(outcome);
    }
  }

  async waitFor(jobId, expected) {
    const outcome = this.outcomes.has(jobId)
      ? this.outcomes.get(jobId)
      : await withTimeout(
          new Promise(resolve => this.waiters.set(jobId, resolve)),
          `job ${jobId} to finish`,
        );
    if (outcome !== expected) {
      throw new Error(`job ${jobId} ended ${outcome}, expected ${expected}`);
    }
    // Finished sets are ordered by finishedOn (ms); make sure the next job
    // cannot finish within the same millisecond so their order is fixed.
    await sleep(2);
  }
}

/** Adds jobs one at a time and waits for each to reach its final state. */
async function runSequentially(queue, tracker, specs) {
  const ids = [];
  for (const { name, data, opts, expected } of specs) {
    const job = await queue.add(name, data, opts);
    await tracker.waitFor(job.id, expected);
    ids.push(job.id);
  }
  return ids;
}

/**
 * Processes exactly one job with a non-running worker (manual fetch), so no
 * other job can be picked up by accident. Returns the processed job.
 */
async function processOne(queueName, prefix, workerName, handler) {
  const worker = new Worker(queueName, null, {
    connection,
    prefix,
    autorun: false,
    name: workerName,
  });
  worker.on('error', err => console.error(`worker ${workerName} error:`, err));
  try {
    const token = `${workerName}-token`;
    const job = await withTimeout(
      worker.getNextJob(token, { block: false }),
      `fetch a job from ${prefix}:${queueName}`,
    );
    if (!job) {
      throw new Error(`no job to process in ${prefix}:${queueName}`);
    }
    const result = await handler(job);
    await job.moveToCompleted(result, token, false);
    return job;
  } finally {
    await worker.close();
  }
}

// ---------------------------------------------------------------- interop-main
async function buildMain() {
  const queue = await openQueue('interop-main');

  const worker = new Worker(
    'interop-main',
    async job => {
      if (job.name === 'send-email' && job.data.fail) {
        await job.log(`attempt ${job.attemptsMade + 1}: connecting to smtp.example.com`);
        throw new Error(`SMTP timeout for job ${job.data.i}`);
      }
      if (job.name === 'render-template') {
        throw new Error(
          'Template render failed\n  at line 3: unexpected "}"\n  at line 7: unknown filter "money"',
        );
      }
      const { i } = job.data;
      await job.log(`sending email to ${job.data.to}`);
      await job.log(`delivered to ${job.data.to}`);
      if (i % 2 === 0) {
        await job.updateProgress(100);
      } else if (i === 5) {
        await job.updateProgress({ percent: 100, stage: 'done' });
      }
      return { delivered: true, i };
    },
    { connection, concurrency: 1, name: 'interop-worker' },
  );
  const tracker = new FinishTracker(worker);
  await worker.waitUntilReady();

  const specs = [];
  for (let i = 1; i <= 5; i++) {
    specs.push({
      name: 'send-email',
      data: { to: `user${i}@example.com`, i },
      expected: 'completed',
    });
  }
  for (let i = 6; i <= 8; i++) {
    specs.push({
      name: 'send-email',
      data: { to: `user${i}@example.com`, i, fail: true },
      opts: { attempts: 3, backoff: { type: 'fixed', delay: 10 } },
      expected: 'failed',
    });
  }
  specs.push({
    name: 'render-template',
    data: { template: 'welcome', i: 9 },
    expected: 'failed',
  });
  await runSequentially(queue, tracker, specs);
  await worker.close();

  // Delayed: distinct delays so the delayed set order is defined.
  for (let k = 0; k < 4; k++) {
    await queue.add(
      'send-reminder',
      { to: `later${k + 1}@example.com` },
      { delay: HOUR + k * 60000 },
    );
  }
  // Prioritized: added out of priority order on purpose.
  for (const priority of [5, 1, 10]) {
    await queue.add('send-digest', { priority }, { priority });
  }
  // Plain waiting jobs.
  for (let k = 1; k <= 4; k++) {
    await queue.add('send-email', { to: `waiting${k}@example.com` });
  }
  await queue.add(
    'send-email',
    { to: 'weird@example.com' },
    { jobId: 'weird/id with space#hash?q=1&x ü 🚀' },
  );
  await queue.add(
    'send-email',
    { to: 'repeat-like@example.com' },
    { jobId: 'repeat-like:123:456' },
  );
  await queue.add('<img src=x onerror=alert(1)>', {
    html: '<script>window.__pwned=1</script>',
  });
}

// -------------------------------------------------------------- interop-paused
async function buildPaused() {
  const queue = await openQueue('interop-paused');
  for (let k = 1; k <= 3; k++) {
    await queue.add('export-csv', { batch: k });
  }
  await queue.pause();
}

// ---------------------------------------------------------------- interop-flow
async function buildFlow() {
  await openQueue('interop-flow-parent');
  await openQueue('interop-flow-children');
  const flows = new FlowProducer({ connection, prefix: 'bull' });
  flows.on('error', err => console.error('flow producer error:', err));
  closers.push(() => flows.close());
  // Fixed job ids (FlowProducer would use random UUIDs otherwise).
  await flows.add({
    name: 'render-report',
    queueName: 'interop-flow-parent',
    data: { report: 'Q1' },
    opts: { jobId: 'report-q1' },
    children: [1, 2, 3].map(page => ({
      name: 'render-page',
      queueName: 'interop-flow-children',
      data: { page },
      opts: { jobId: `page-${page}` },
    })),
  });
  const child = await processOne(
    'interop-flow-children',
    'bull',
    'flow-worker',
    async job => {
      await job.log(`rendered page ${job.data.page}`);
      return { page: job.data.page, bytes: 1024 };
    },
  );
  if (child.id !== 'page-1') {
    throw new Error(`expected page-1 to be processed first, got ${child.id}`);
  }
}

// -------------------------------------------------------------- interop-tenant
async function buildTenant() {
  const prefix = '{tenant-a}';
  const queue = await openQueue('interop-tenant', prefix);
  const worker = new Worker(
    'interop-tenant',
    async job => {
      if (job.data.fail) {
        throw new Error(`account ${job.data.account} is locked`);
      }
      return { synced: job.data.account };
    },
    { connection, prefix, concurrency: 1, name: 'tenant-worker' },
  );
  const tracker = new FinishTracker(worker);
  await worker.waitUntilReady();
  await runSequentially(queue, tracker, [
    { name: 'sync-account', data: { account: 'a-1' }, expected: 'completed' },
    { name: 'sync-account', data: { account: 'a-2' }, expected: 'completed' },
    {
      name: 'sync-account',
      data: { account: 'a-3', fail: true },
      opts: { attempts: 1 },
      expected: 'failed',
    },
  ]);
  await worker.close();
}

// ----------------------------------------------------------- interop-scheduled
async function buildScheduled() {
  const queue = await openQueue('interop-scheduled');
  const first = await queue.upsertJobScheduler(
    'hourly-report',
    { every: HOUR },
    { name: 'hourly-report', data: { kind: 'hourly' } },
  );
  // With `every` and no offset/startDate, BullMQ 6.7 enqueues the first
  // iteration immediately (delay 0, waiting). Let a short-lived worker run it:
  // that makes the scheduler create the next iteration, delayed by one hour.
  const state = await first.getState();
  if (state === 'waiting') {
    const job = await processOne(
      'interop-scheduled',
      'bull',
      'scheduler-worker',
      async () => ({ rows: 42 }),
    );
    if (job.id !== first.id) {
      throw new Error(`expected ${first.id} to be processed, got ${job.id}`);
    }
  }
  const delayed = await queue.getDelayedCount();
  if (delayed !== 1) {
    throw new Error(`expected 1 delayed scheduler job, found ${delayed}`);
  }
}

// -------------------------------------------------------- interop-legacy-repeat
async function buildLegacyRepeat() {
  const queue = await openQueue('interop-legacy-repeat');
  // Repeatable jobs the pre-scheduler way: the `repeat` member is the md5 of
  // `name:jobId:endDate:tz:pattern-or-every`, its hash `repeat:<md5>` holds
  // name, every or pattern and tz (no `ic`, no template), and the next run is
  // the delayed job `repeat:<md5>:<ms>`.
  await queue.add('tick', { n: 1 }, { repeat: { every: HOUR } });
  await queue.add('nightly', { n: 2 }, { repeat: { pattern: '0 30 3 * * *', tz: 'Europe/Paris' } });
  const delayed = await queue.getDelayedCount();
  if (delayed !== 2) {
    throw new Error(`expected 2 delayed repeatable jobs, found ${delayed}`);
  }
}

async function main() {
  await withTimeout(wipeQueues(), 'delete old queue keys');
  await buildMain();
  await buildPaused();
  await buildFlow();
  await buildTenant();
  await buildScheduled();
  if (typeof Queue.prototype.getRepeatableJobs === 'function') {
    await buildLegacyRepeat();
  }
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error('build_state failed:', err);
  exitCode = 1;
} finally {
  for (const close of closers.reverse()) {
    try {
      await withTimeout(close(), 'close a connection', 5000);
    } catch (err) {
      console.error('close failed:', err);
      exitCode = exitCode || 1;
    }
  }
}
if (exitCode === 0) {
  process.stdout.write(JSON.stringify({ version, queues: created }) + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
