// Each cause of a queue that does not move, made by real Node BullMQ (6 here, or 5 with
// BULLMQ_DIR=tests/interop5: see bullmq_of.mjs), for the health interop tests (test_health_interop.py).
//
//   node health_causes.mjs <redis-url> <cause> <queue> [<child queue>]
//
// Causes (queue `Q`, child queue `C`; every worker is named `health-worker`):
//   paused        Q paused with 3 waiting jobs p-1..p-3 and a worker connected
//   at_capacity   setGlobalConcurrency(2) on Q, 6 jobs c-1..c-6, a worker (concurrency 6) holding 2
//   rate_limited  a worker with limiter {max: 1, duration: 60000} did r-1; r-2 waits, Q is rate-limited
//   stalled       a worker took s-1..s-3 and was killed (SIGKILL); a stall checker moved them to wait
//   deduplicated  d-1 (delayed 1 h) holds deduplication id `report-42`; adding d-2 with it was
//                 deduplicated; a worker connected
//   flow          C paused; a FlowProducer's parent parent-1 in Q waits on child-1 in C; workers on both
//   delayed       delayed jobs l-1 (due in 1 h), l-2 (2 h), l-3 (3 h); a worker connected
//
// Prints {"step": "ready", ...} once the cause holds, then follows commands on stdin, one per line,
// answering each with one JSON line:
//   getters           what Node's own getters say of the queue(s) ({"step": "getters", "queues": {...}})
//   wait-active <n>   until the workers hold n jobs of Q (at_capacity)
//   release           the held jobs finish (at_capacity)
//   worker            start one more worker on Q (rate_limited: with the same limiter)
//   add <job id>      add a job to Q with the deduplication id `report-42`; says the id Node answered
//   settle            until no job of Q (and C) waits, is active or waits on children; then the getters
//   close             close every connection and exit 0
// Stops itself after 120 s.
import { fork } from 'node:child_process';
import readline from 'node:readline';
import { bullmq, version } from './bullmq_of.mjs';

const { FlowProducer, Queue, Worker } = bullmq;
const [url, cause, name, childName] = process.argv.slice(2);
const CAUSES = ['paused', 'at_capacity', 'rate_limited', 'stalled', 'deduplicated', 'flow', 'delayed'];
if (!url || !CAUSES.includes(cause) || !name || (cause === 'flow' && !childName)) {
  console.error(`usage: node health_causes.mjs <redis-url> <${CAUSES.join('|')}> <queue> [<child queue>]`);
  process.exit(2);
}
setTimeout(() => {
  console.error('health_causes.mjs: timed out after 120 s');
  process.exit(3);
}, 120000).unref();

const connection = { url };
const DEDUP_ID = 'report-42';
const LIMITER = { max: 1, duration: 60000 };
const STALLED = 3;
const say = message => process.stdout.write(`${JSON.stringify(message)}\n`);
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function until(what, check, ms = 20000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

if (process.env.HEALTH_CAUSES_ROLE === 'holder') {
  // The worker that dies holding jobs (stalled): it never finishes one.
  let held = 0;
  new Worker(
    name,
    async () => {
      held += 1;
      if (held === STALLED) process.send('holding');
      await new Promise(() => {});
    },
    // No stall check of its own: it would hold the `stalled-check` key for its default 30 s interval.
    { connection, name: 'health-worker', concurrency: STALLED, lockDuration: 1500, skipStalledCheck: true },
  );
} else {
  await main();
}

async function main() {
  const queue = new Queue(name, { connection });
  const child = childName ? new Queue(childName, { connection }) : null;
  const queues = child ? [queue, child] : [queue];
  const workers = [];
  const closers = [];
  let release;
  const released = new Promise(resolve => (release = resolve));
  let held = 0;
  const quick = async () => ({ ok: true });
  const holding = async () => {
    held += 1;
    await released;
    return { ok: true };
  };
  const startWorker = (queueName, processor = quick, opts = {}) => {
    // drainDelay 1: an idle worker asks again after 1 s (5 s by default), so the tests settle sooner.
    const worker = new Worker(queueName, processor, { connection, name: 'health-worker', drainDelay: 1, ...opts });
    worker.on('error', error => console.error(`worker ${queueName}: ${error.message}`));
    workers.push(worker);
    return worker;
  };
  const workerRunning = worker => worker.waitUntilReady();

  const ready = { step: 'ready', version, cause, queues: queues.map(each => each.name) };
  if (cause === 'paused') {
    await queue.pause();
    await queue.addBulk([1, 2, 3].map(i => ({ name: 'work', data: { i }, opts: { jobId: `p-${i}` } })));
    await workerRunning(startWorker(name));
  } else if (cause === 'at_capacity') {
    await queue.setGlobalConcurrency(2);
    await queue.addBulk([1, 2, 3, 4, 5, 6].map(i => ({ name: 'work', data: { i }, opts: { jobId: `c-${i}` } })));
    startWorker(name, holding, { concurrency: 6 });
    await until('2 active jobs', async () => held === 2 && (await queue.getActiveCount()) === 2);
    await sleep(300); // the worker would take a third job now if the cap let it
    ready.held = held;
  } else if (cause === 'rate_limited') {
    await queue.add('work', { i: 1 }, { jobId: 'r-1' });
    startWorker(name, quick, { limiter: LIMITER });
    await until('r-1 completed', async () => (await queue.getCompletedCount()) === 1);
    await queue.add('work', { i: 2 }, { jobId: 'r-2' });
    ready.rateLimitTtl = await queue.getRateLimitTtl();
  } else if (cause === 'stalled') {
    await queue.addBulk(
      Array.from({ length: STALLED }, (_, i) => ({ name: 'work', data: { i }, opts: { jobId: `s-${i + 1}` } })),
    );
    const holder = fork(new URL(import.meta.url).pathname, process.argv.slice(2), {
      env: { ...process.env, HEALTH_CAUSES_ROLE: 'holder' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise(resolve => holder.on('message', resolve));
    holder.kill('SIGKILL');
    const stalled = [];
    const checker = new Worker(name, null, {
      connection,
      autorun: false,
      stalledInterval: 300,
      lockDuration: 1500,
      maxStalledCount: 5,
    });
    checker.on('stalled', jobId => stalled.push(jobId));
    await checker.startStalledCheckTimer();
    await until('the stall checker', async () => stalled.length >= STALLED);
    await checker.close();
    ready.stalled = stalled.sort();
  } else if (cause === 'deduplicated') {
    const first = await queue.add('report', { n: 1 }, { jobId: 'd-1', delay: 3600000, deduplication: { id: DEDUP_ID } });
    const second = await queue.add('report', { n: 2 }, { jobId: 'd-2', deduplication: { id: DEDUP_ID } });
    await workerRunning(startWorker(name));
    Object.assign(ready, { first: first.id, second: second.id, dedupId: DEDUP_ID });
  } else if (cause === 'flow') {
    await child.pause();
    const flows = new FlowProducer({ connection });
    closers.push(flows);
    await flows.add({
      name: 'parent',
      queueName: name,
      opts: { jobId: 'parent-1' },
      children: [{ name: 'child', queueName: childName, data: { part: 1 }, opts: { jobId: 'child-1' } }],
    });
    await Promise.all([workerRunning(startWorker(name)), workerRunning(startWorker(childName))]);
  } else if (cause === 'delayed') {
    await queue.addBulk(
      [1, 2, 3].map(i => ({ name: 'later', data: { i }, opts: { jobId: `l-${i}`, delay: i * 3600000 } })),
    );
    await workerRunning(startWorker(name));
  }
  say(ready);

  async function getters() {
    const result = {};
    for (const each of queues) {
      result[each.name] = {
        isPaused: await each.isPaused(),
        globalConcurrency: await each.getGlobalConcurrency(),
        rateLimitTtl: await each.getRateLimitTtl(),
        deduplicationJobId: await each.getDeduplicationJobId(DEDUP_ID),
        counts: await each.getJobCounts(),
        ids: {
          waiting: (await each.getJobs(['waiting'])).map(job => job.id),
          active: (await each.getJobs(['active'])).map(job => job.id),
          delayed: (await each.getJobs(['delayed'])).map(job => job.id),
          completed: (await each.getJobs(['completed'])).map(job => job.id),
        },
      };
    }
    return { step: 'getters', queues: result };
  }

  const settled = async () => {
    for (const each of queues) {
      const counts = await each.getJobCounts('waiting', 'paused', 'active', 'prioritized', 'waiting-children');
      if (Object.values(counts).some(count => count > 0)) return false;
    }
    return true;
  };

  const commands = {
    getters,
    'wait-active': async n => {
      await until(`${n} active jobs`, async () => held === Number(n) && (await queue.getActiveCount()) === Number(n));
      return { ...(await getters()), step: 'wait-active', held };
    },
    release: async () => {
      release();
      return { step: 'release' };
    },
    worker: async () => {
      await workerRunning(startWorker(name, quick, cause === 'rate_limited' ? { limiter: LIMITER } : {}));
      return { step: 'worker', workers: workers.length };
    },
    add: async jobId => {
      const job = await queue.add('report', { n: jobId }, { jobId, deduplication: { id: DEDUP_ID } });
      return { step: 'add', asked: jobId, id: job.id };
    },
    settle: async () => {
      await until('the queues to settle', settled);
      return { ...(await getters()), step: 'settle' };
    },
    close: async () => {
      release();
      await Promise.all([...workers, ...closers, ...queues].map(each => each.close()));
      return { step: 'close' };
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [word, ...args] = line.trim().split(/\s+/);
    const run = commands[word];
    if (!run) {
      say({ step: 'error', message: `unknown command ${word}` });
      continue;
    }
    try {
      say(await run(...args));
    } catch (error) {
      say({ step: 'error', message: String(error && error.stack ? error.stack : error) });
    }
    if (word === 'close') process.exit(0);
  }
}
