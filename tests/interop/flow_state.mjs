// A three-level flow across two queues with different prefixes, built with Node BullMQ's
// FlowProducer and processed by Node workers, for the flow tree tests (test_flow_tree.py).
//
//   node flow_state.mjs <redis-url>
//
//   bull:flow-top root-1 (ship-order)                      waiting-children
//   ├── {shard-b}:flow-mid mid-1 (pack)                    waiting-children
//   │   ├── bull:flow-top leaf-ok (label)                  completed (processed child)
//   │   ├── {shard-b}:flow-mid leaf-bad (weigh)            failed, ignoreDependencyOnFailure
//   │   └── bull:flow-top leaf-later (notify, delay 1 h)   delayed (pending child)
//   └── {shard-b}:flow-mid mid-2 (invoice)                 failed (its child failed it)
//       └── bull:flow-top leaf-fatal (charge)              failed, failParentOnFailure
//
// Prints ONE JSON line: {"queues": [...], "jobs": {"<queue key>|<id>": {state, name, parentKey,
// dependencies}}} with every state from Node's own job.getState() and the counts from
// job.getDependenciesCount(). Diagnostics go to stderr; any failure exits non-zero.
import { FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const STEP_TIMEOUT_MS = 10000;
const TOTAL_TIMEOUT_MS = 40000;
const url = process.argv[2];
if (!url) {
  console.error('usage: node flow_state.mjs <redis-url>');
  process.exit(2);
}
setTimeout(() => {
  console.error(`flow_state: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

const connection = { url };
const closers = [];
const TOP = { prefix: 'bull', name: 'flow-top' };
const MID = { prefix: '{shard-b}', name: 'flow-mid' };

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function openQueue({ prefix, name }) {
  const queue = new Queue(name, { connection, prefix });
  queue.on('error', err => console.error(`queue ${prefix}:${name} error:`, err));
  closers.push(() => queue.close());
  await queue.waitUntilReady();
  return queue;
}

/** A worker that fails the ids in `failing` and completes the rest; resolves once `ids` all finished. */
async function runWorker({ prefix, name }, failing, ids) {
  const done = new Map();
  let notify = () => {};
  const worker = new Worker(
    name,
    async job => {
      if (failing.includes(job.id)) {
        throw new Error(`refused ${job.id}`);
      }
      return { ok: job.id };
    },
    { connection, prefix, concurrency: 1, name: `${name}-worker` },
  );
  worker.on('error', err => console.error(`worker ${name} error:`, err));
  worker.on('completed', job => {
    done.set(job.id, 'completed');
    notify();
  });
  worker.on('failed', job => {
    if (job) {
      done.set(job.id, 'failed');
      notify();
    }
  });
  try {
    await withTimeout(
      new Promise(resolve => {
        notify = () => {
          if (ids.every(id => done.has(id))) resolve();
        };
        notify();
      }),
      `${name} jobs ${ids.join(', ')}`,
    );
  } finally {
    await withTimeout(worker.close(), `close worker ${name}`);
  }
  await sleep(2);
  return Object.fromEntries(done);
}

async function main() {
  const raw = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  closers.push(async () => raw.disconnect());
  await withTimeout(raw.connect(), 'connect');
  const top = await openQueue(TOP);
  const mid = await openQueue(MID);
  const flows = new FlowProducer({ connection, prefix: 'bull' });
  flows.on('error', err => console.error('flow producer error:', err));
  closers.push(() => flows.close());
  const tree = await flows.add({
    name: 'ship-order',
    queueName: TOP.name,
    data: { order: 7 },
    opts: { jobId: 'root-1' },
    children: [
      {
        name: 'pack',
        queueName: MID.name,
        prefix: MID.prefix,
        opts: { jobId: 'mid-1' },
        children: [
          { name: 'label', queueName: TOP.name, opts: { jobId: 'leaf-ok' } },
          {
            name: 'weigh',
            queueName: MID.name,
            prefix: MID.prefix,
            opts: { jobId: 'leaf-bad', attempts: 1, ignoreDependencyOnFailure: true },
          },
          { name: 'notify', queueName: TOP.name, opts: { jobId: 'leaf-later', delay: 3600000 } },
        ],
      },
      {
        name: 'invoice',
        queueName: MID.name,
        prefix: MID.prefix,
        opts: { jobId: 'mid-2', attempts: 1 },
        children: [
          {
            name: 'charge',
            queueName: TOP.name,
            opts: { jobId: 'leaf-fatal', attempts: 1, failParentOnFailure: true },
          },
        ],
      },
    ],
  });
  check(tree.job.id === 'root-1', `root id ${tree.job.id}`);

  const worked = {
    top: await runWorker(TOP, ['leaf-fatal'], ['leaf-ok', 'leaf-fatal']),
    // leaf-bad fails (ignored by mid-1); mid-2 was moved to wait by its failed child and fails.
    mid: await runWorker(MID, ['leaf-bad'], ['leaf-bad', 'mid-2']),
  };

  const jobs = {};
  const where = [
    [top, TOP, ['root-1', 'leaf-ok', 'leaf-later', 'leaf-fatal']],
    [mid, MID, ['mid-1', 'leaf-bad', 'mid-2']],
  ];
  for (const [queue, { prefix, name }, ids] of where) {
    for (const id of ids) {
      const job = await queue.getJob(id);
      check(job, `getJob ${prefix}:${name} ${id}`);
      jobs[`${prefix}:${name}|${id}`] = {
        key: `${prefix}:${name}:${id}`,
        name: job.name,
        state: await job.getState(),
        parentKey: job.parentKey || null,
        dependencies: await job.getDependenciesCount(),
      };
    }
  }
  const expected = {
    'bull:flow-top|root-1': 'waiting-children',
    'bull:flow-top|leaf-ok': 'completed',
    'bull:flow-top|leaf-later': 'delayed',
    'bull:flow-top|leaf-fatal': 'failed',
    '{shard-b}:flow-mid|mid-1': 'waiting-children',
    '{shard-b}:flow-mid|leaf-bad': 'failed',
    '{shard-b}:flow-mid|mid-2': 'failed',
  };
  for (const [id, state] of Object.entries(expected)) {
    check(jobs[id].state === state, `${id} is ${jobs[id].state}, expected ${state}`);
  }
  return {
    queues: [`${TOP.prefix}:${TOP.name}`, `${MID.prefix}:${MID.name}`],
    worked,
    jobs,
  };
}

let exitCode = 0;
let result;
try {
  result = await main();
} catch (err) {
  console.error('flow_state failed:', err);
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
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
