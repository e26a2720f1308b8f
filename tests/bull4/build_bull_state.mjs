// Builds a deterministic queue state in Redis with the real Node Bull 4 (the
// older `bull` package, not BullMQ), so the Python readers can be checked
// against Bull's own key layout and getters (bull_getters.mjs).
//
//   node build_bull_state.mjs <redis-url>
//
// Prints ONE JSON line on stdout: {"queues": [{"prefix": ..., "name": ...}, ...]}
// and exits 0 once every connection is closed. Anything else goes to stderr.
// Every key of the queues it builds is deleted first, so a rerun against the
// same Redis gives the same shape (job ids restart at 1).
//
// Not deterministic, by Bull's design: timestamps, and the ids of repeatable
// jobs (`repeat:<md5>:<next run in ms>`), which depend on the clock.
import Queue from 'bull';
import { Redis } from 'ioredis';

const HOUR = 3600000;
const STEP_TIMEOUT_MS = 10000; // one job / one step
const TOTAL_TIMEOUT_MS = 30000; // the whole script

const url = process.argv[2];
if (!url) {
  console.error('usage: node build_bull_state.mjs <redis-url>');
  process.exit(2);
}

// Never hang: a hard deadline for the whole script.
setTimeout(() => {
  console.error(`build_bull_state: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

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
  { prefix: 'bull', name: 'legacy-main' },
  { prefix: 'bull', name: 'legacy-paused' },
  { prefix: 'bull', name: 'legacy-repeat' },
  { prefix: 'bull', name: 'legacy-idle' },
  { prefix: 'bull', name: 'legacy-active' },
  { prefix: '{legacy-b}', name: 'legacy-tenant' },
];

function globEscape(text) {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Deletes every key of the queues this script builds. */
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

function checkListed(name, prefix) {
  if (!QUEUES.some(q => q.prefix === prefix && q.name === name)) {
    throw new Error(`${prefix}:${name} is missing from QUEUES`);
  }
}

/** A Bull Queue object that only adds jobs / pauses (never processes). */
async function openQueue(name, prefix = 'bull') {
  checkListed(name, prefix);
  const queue = new Queue(name, url, { prefix });
  queue.on('error', err => console.error(`queue ${prefix}:${name} error:`, err));
  closers.push(() => queue.close());
  await queue.isReady();
  created.push({ prefix, name });
  return queue;
}

/**
 * A second Queue object on the same queue that processes jobs (Bull has no
 * separate Worker class: `queue.process()` turns a Queue into a worker).
 * Closed by the caller as soon as its jobs are done, so it cannot pick up the
 * jobs added afterwards to stay waiting.
 */
function openWorker(name, prefix, handler, extra = {}) {
  checkListed(name, prefix);
  const worker = new Queue(name, url, { prefix, ...extra });
  worker.on('error', err => console.error(`worker ${prefix}:${name} error:`, err));
  const tracker = new FinishTracker(worker);
  // '*': one handler for every job name (Bull dispatches on job.name).
  // process() resolves only when the worker stops; do not await it.
  worker.process('*', 1, handler).catch(err => console.error(`process ${name} failed:`, err));
  return { worker, tracker };
}

/**
 * Remembers the final outcome of every job a worker queue handles, so a
 * caller can add a job and then wait for exactly that job to be finished
 * (completed, or failed with no retry left) without racing the events.
 */
class FinishTracker {
  constructor(worker) {
    this.outcomes = new Map();
    this.waiters = new Map();
    worker.on('completed', job => this.settle(String(job.id), 'completed'));
    worker.on('failed', job => {
      // 'failed' fires on every failed attempt; finishedOn is only set when the
      // job really moved to the failed set (no retry left).
      if (job && job.finishedOn) {
        this.settle(String(job.id), 'failed');
      }
    });
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
    const id = String(jobId);
    const outcome = this.outcomes.has(id)
      ? this.outcomes.get(id)
      : await withTimeout(
          new Promise(resolve => this.waiters.set(id, resolve)),
          `job ${id} to finish`,
        );
    if (outcome !== expected) {
      throw new Error(`job ${id} ended ${outcome}, expected ${expected}`);
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
    ids.push(String(job.id));
  }
  return ids;
}

function expectIds(what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(
      `${what}: got ids ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`,
    );
  }
}

// ----------------------------------------------------------------- legacy-main
async function buildMain() {
  const queue = await openQueue('legacy-main');
  const { worker, tracker } = openWorker(
    'legacy-main',
    'bull',
    async function sendEmail(job) {
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
        await job.progress(100);
      } else if (i === 5) {
        await job.progress({ percent: 100, stage: 'done' });
      }
      return { delivered: true, i };
    },
    // Bull >= 4.10 can keep BullMQ-style throughput metrics (metrics:<state>).
    { metrics: { maxDataPoints: 60 } },
  );

  const specs = [];
  for (let i = 1; i <= 5; i++) {
    specs.push({
      name: 'send-email',
      data: { to: `user${i}@example.com`, i },
      expected: 'completed',
    });
  }
  // 6 and 7 retry through the delayed set (backoff), 8 retries at once
  // (Bull's retryJob script puts it straight back into `wait`).
  for (const i of [6, 7]) {
    specs.push({
      name: 'send-email',
      data: { to: `user${i}@example.com`, i, fail: true },
      opts: { attempts: 3, backoff: { type: 'fixed', delay: 10 } },
      expected: 'failed',
    });
  }
  specs.push({
    name: 'send-email',
    data: { to: 'user8@example.com', i: 8, fail: true },
    opts: { attempts: 3 },
    expected: 'failed',
  });
  specs.push({
    name: 'render-template',
    data: { template: 'welcome', i: 9 },
    expected: 'failed',
  });
  const finished = await runSequentially(queue, tracker, specs);
  expectIds('legacy-main finished jobs', finished, ['1', '2', '3', '4', '5', '6', '7', '8', '9']);
  await withTimeout(worker.close(), 'close the legacy-main worker');

  // Delayed (ids 10-13): distinct delays so the delayed set order is defined.
  for (let k = 0; k < 4; k++) {
    await queue.add(
      'send-reminder',
      { to: `later${k + 1}@example.com` },
      { delay: HOUR + k * 60000 },
    );
  }
  // Plain waiting jobs first (14, 15), then prioritized ones added out of
  // priority order on purpose (16: 5, 17: 1, 18: 10), then plain again (19, 20).
  // Bull keeps all of them in the one `wait` list, the prioritized ones
  // nearest the end that is taken next, in priority order (`priority` zset).
  for (let k = 1; k <= 2; k++) {
    await queue.add('send-email', { to: `waiting${k}@example.com` });
  }
  for (const priority of [5, 1, 10]) {
    await queue.add('send-digest', { priority }, { priority });
  }
  for (let k = 3; k <= 4; k++) {
    await queue.add('send-email', { to: `waiting${k}@example.com` });
  }
  // LIFO (21): pushed onto the end taken next, ahead even of the prioritized jobs.
  await queue.add('send-urgent', { to: 'lifo@example.com' }, { lifo: true });
  // Hostile custom ids (22, 23: the `id` counter goes up for custom ids too)
  // and name (24).
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
  await queue.add('<img src=x onerror=alert(1)>', { html: '<script>window.__pwned=1</script>' });
  // A job with no name at all: Bull stores its default name `__default__`.
  await queue.add({ unnamed: true });
}

// --------------------------------------------------------------- legacy-paused
async function buildPaused() {
  const queue = await openQueue('legacy-paused');
  for (let k = 1; k <= 3; k++) {
    await queue.add('export-csv', { batch: k });
  }
  // Global pause: Bull RENAMEs `wait` to `paused`, SETs `meta-paused` and
  // (forward compatibility) HSETs `meta` paused=1.
  await queue.pause();
  // Added while paused: straight into the `paused` list.
  await queue.add('export-csv', { batch: 4 });
  await queue.add('export-csv', { batch: 5, urgent: true }, { priority: 2 });
  await queue.add('export-csv', { batch: 6 }, { delay: HOUR });
  if (!(await queue.isPaused())) {
    throw new Error('legacy-paused is not paused');
  }
}

// --------------------------------------------------------------- legacy-repeat
async function buildRepeat() {
  const queue = await openQueue('legacy-repeat');
  // Each adds an entry to the `repeat` zset and its next run as a delayed job.
  await queue.add('hourly-report', { kind: 'hourly' }, { repeat: { every: HOUR } });
  await queue.add(
    'nightly-cleanup',
    { kind: 'nightly' },
    { repeat: { cron: '0 3 * * *', tz: 'UTC' } },
  );
  await queue.add(
    'with-id',
    { kind: 'custom-id' },
    { repeat: { every: 2 * HOUR }, jobId: 'fixed-id' },
  );
  const repeatable = await queue.getRepeatableJobs();
  if (repeatable.length !== 3) {
    throw new Error(`expected 3 repeatable jobs, found ${repeatable.length}`);
  }
  const delayed = await queue.getDelayedCount();
  if (delayed !== 3) {
    throw new Error(`expected 3 delayed repeat runs, found ${delayed}`);
  }
}

// ----------------------------------------------------------------- legacy-idle
/** Only completed jobs, nothing else: the least a Bull queue leaves in Redis. */
async function buildIdle() {
  const queue = await openQueue('legacy-idle');
  const { worker, tracker } = openWorker('legacy-idle', 'bull', async function ping(job) {
    return { ok: job.data.n };
  });
  const ids = await runSequentially(queue, tracker, [
    { name: 'ping', data: { n: 1 }, expected: 'completed' },
    { name: 'ping', data: { n: 2 }, expected: 'completed' },
  ]);
  expectIds('legacy-idle', ids, ['1', '2']);
  await withTimeout(worker.close(), 'close the legacy-idle worker');
}

// --------------------------------------------------------------- legacy-active
/**
 * One job held active: taken from `wait` with Bull's moveToActive script (as a
 * worker does) by a Queue whose lock lasts an hour, and never finished. The
 * `<id>:lock` key keeps it from being seen as stalled, and from being removed
 * or cleaned, for that hour. Nothing runs the stalled check on this queue, so
 * there is no `stalled` set.
 */
async function buildActive() {
  const queue = await openQueue('legacy-active');
  await queue.add('transcode', { file: 'a.mp4' });
  await queue.add('transcode', { file: 'b.mp4' });
  const holder = new Queue('legacy-active', url, {
    prefix: 'bull',
    settings: { lockDuration: HOUR },
  });
  holder.on('error', err => console.error('legacy-active holder error:', err));
  try {
    const job = await withTimeout(holder.moveToActive(), 'move a job to active');
    if (!job || String(job.id) !== '1') {
      throw new Error(`expected job 1 to become active, got ${job && job.id}`);
    }
    await job.log('transcoding started');
    await job.progress(40);
  } finally {
    await withTimeout(holder.close(), 'close the legacy-active holder');
  }
}

// --------------------------------------------------------------- legacy-tenant
async function buildTenant() {
  const prefix = '{legacy-b}';
  const queue = await openQueue('legacy-tenant', prefix);
  const { worker, tracker } = openWorker('legacy-tenant', prefix, async function syncAccount(job) {
    if (job.data.fail) {
      throw new Error(`account ${job.data.account} is locked`);
    }
    return { synced: job.data.account };
  });
  await runSequentially(queue, tracker, [
    { name: 'sync-account', data: { account: 'b-1' }, expected: 'completed' },
    { name: 'sync-account', data: { account: 'b-2', fail: true }, expected: 'failed' },
  ]);
  await withTimeout(worker.close(), 'close the legacy-tenant worker');
  await queue.add('sync-account', { account: 'b-3' });
}

async function main() {
  await withTimeout(wipeQueues(), 'delete old queue keys');
  await buildMain();
  await buildPaused();
  await buildRepeat();
  await buildIdle();
  await buildActive();
  await buildTenant();
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error('build_bull_state failed:', err);
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
  process.stdout.write(JSON.stringify({ queues: created }) + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
