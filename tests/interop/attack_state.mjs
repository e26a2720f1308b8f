// Builds the queue state of the security attack tests with the real Node BullMQ.
//
//   node attack_state.mjs <redis-url> [--parts ids,reserved,flows,big] [--ids-queue <name>]
//
// Every part is built through Node BullMQ's own API (Queue.add, FlowProducer.add,
// Worker); nothing is written raw. The parts (all of them by default):
//
//   ids       bull:<ids-queue> (default attack-ids): failed jobs whose custom ids
//             are path tricks Node accepts (a Worker that throws failed them, one
//             at a time), then the waiting jobs w1, w2, w3.
//   reserved  bull:attack-reserved: waiting job r1, then a job with the custom id
//             `active` added while the queue has no active list, which turns
//             bull:attack-reserved:active into a hash (Node accepts it);
//             bull:attack-healthy: waiting h1, h2.
//   flows     bull:orders/order-1 waits on bull:payments/pay-1;
//             bull:payments/invoice-1 waits on bull:orders/render-1, which a Node
//             worker failed.
//   big       bull:attack-flow/big-parent waits on its child big-child (same queue).
//
// Prints ONE JSON line on stdout with what was created and what Node's API
// answered for it (each result is checked here too; a mismatch is an error),
// and exits 0 once every connection is closed. Anything else goes to stderr.
// Run it only against a throwaway Redis: every key of the queues it builds is
// deleted first.
import { FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const STEP_TIMEOUT_MS = 10000; // one job / one step
const TOTAL_TIMEOUT_MS = 40000; // the whole script

const PATH_TRICKS = [
  '../../actions/drain/',
  'a/../../x',
  '..',
  '.',
  '%2e%2e/',
  'x?y#z',
  'sp ace+&=',
  'ü🚀',
];
const ALL_PARTS = ['ids', 'reserved', 'flows', 'big'];

function parseArgs(argv) {
  const [url, ...rest] = argv;
  const options = { url, parts: ALL_PARTS, idsQueue: 'attack-ids' };
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (value === undefined) {
      throw new Error(`${flag} needs a value`);
    }
    if (flag === '--parts') {
      options.parts = value.split(',').filter(Boolean);
      const unknown = options.parts.filter(part => !ALL_PARTS.includes(part));
      if (unknown.length) {
        throw new Error(`unknown parts: ${unknown.join(', ')}`);
      }
    } else if (flag === '--ids-queue') {
      if (!/^[A-Za-z0-9_-]+$/.test(value)) {
        throw new Error(`--ids-queue ${value}: letters, digits, '-' and '_' only`);
      }
      options.idsQueue = value;
    } else {
      throw new Error(`unknown option ${flag}`);
    }
  }
  return options;
}

let options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(String(err.message || err));
  options = null;
}
if (!options || !options.url) {
  console.error(
    'usage: node attack_state.mjs <redis-url>' +
      ' [--parts ids,reserved,flows,big] [--ids-queue <name>]',
  );
  process.exit(2);
}

// Never hang: a hard deadline for the whole script.
setTimeout(() => {
  console.error(`attack_state: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

const { url } = options;
const connection = { url };
const created = []; // {prefix, name} in creation order
const closers = []; // everything to close at the end (in reverse order)
let raw; // one plain ioredis client, for wiping and for checking key types

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

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

function same(actual, expected) {
  return JSON.stringify(actual) === JSON.stringify(expected);
}

function queuesOf(parts) {
  const names = [];
  if (parts.includes('ids')) names.push(options.idsQueue);
  if (parts.includes('reserved')) names.push('attack-reserved', 'attack-healthy');
  if (parts.includes('flows')) names.push('orders', 'payments');
  if (parts.includes('big')) names.push('attack-flow');
  return names;
}

function globEscape(text) {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Deletes every key of the queues this run builds (build_state.mjs says why not obliterate). */
async function wipeQueues(names) {
  for (const name of names) {
    let cursor = '0';
    do {
      const match = `bull:${globEscape(name)}:*`;
      const [next, keys] = await raw.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length) {
        await raw.del(...keys);
      }
    } while (cursor !== '0');
  }
}

async function openQueue(name) {
  const queue = new Queue(name, { connection, prefix: 'bull' });
  queue.on('error', err => console.error(`queue bull:${name} error:`, err));
  closers.push(() => queue.close());
  await queue.waitUntilReady();
  created.push({ prefix: 'bull', name });
  return queue;
}

/** A running Worker whose processor throws; resolves each job id once it failed for good. */
function failingWorker(queueName, workerName) {
  const outcomes = new Map();
  const waiters = new Map();
  const settle = (jobId, outcome) => {
    outcomes.set(jobId, outcome);
    const waiter = waiters.get(jobId);
    if (waiter) {
      waiters.delete(jobId);
      waiter(outcome);
    }
  };
  const worker = new Worker(
    queueName,
    async job => {
      throw new Error(`refused ${job.id}`);
    },
    { connection, prefix: 'bull', concurrency: 1, name: workerName },
  );
  worker.on('failed', job => {
    if (job && job.finishedOn) {
      settle(job.id, 'failed');
    }
  });
  worker.on('completed', job => settle(job.id, 'completed'));
  worker.on('error', err => console.error(`worker ${workerName} error:`, err));
  return {
    worker,
    async failed(jobId) {
      const outcome = outcomes.has(jobId)
        ? outcomes.get(jobId)
        : await withTimeout(
            new Promise(resolve => waiters.set(jobId, resolve)),
            `job ${jobId} to fail`,
          );
      check(outcome === 'failed', `job ${jobId} ended ${outcome}, expected failed`);
      await sleep(2); // distinct finishedOn, so the failed set's order is fixed
    },
    close: () => withTimeout(worker.close(), `close worker ${workerName}`),
  };
}

// ------------------------------------------------------------------------ ids
async function buildIds() {
  const name = options.idsQueue;
  const queue = await openQueue(name);
  const failing = failingWorker(name, 'attack-worker');
  await failing.worker.waitUntilReady();
  try {
    for (const jobId of PATH_TRICKS) {
      const job = await queue.add('trick', { jobId }, { jobId });
      check(
        job.id === jobId,
        `Node gave ${JSON.stringify(job.id)} for jobId ${JSON.stringify(jobId)}`,
      );
      await failing.failed(jobId);
    }
  } finally {
    await failing.close();
  }
  const waiting = [];
  for (const jobId of ['w1', 'w2', 'w3']) {
    const job = await queue.add('wait', { jobId }, { jobId });
    check(job.id === jobId, `Node gave ${job.id} for ${jobId}`);
    waiting.push(job.id);
  }
  const failedIds = (await queue.getJobs(['failed'], 0, -1, true)).map(job => job.id);
  check(same(failedIds, PATH_TRICKS), `failed set ${JSON.stringify(failedIds)}`);
  const waitingIds = (await queue.getJobs(['waiting'], 0, -1, true)).map(job => job.id);
  check(same(waitingIds, waiting), `waiting ${JSON.stringify(waitingIds)}`);
  const states = {};
  for (const jobId of PATH_TRICKS) {
    const job = await queue.getJob(jobId);
    check(job && job.id === jobId, `getJob(${JSON.stringify(jobId)}) found ${job && job.id}`);
    states[jobId] = { state: await job.getState(), failedReason: job.failedReason };
    check(states[jobId].state === 'failed', `${jobId} is ${states[jobId].state}`);
  }
  return {
    queue: `bull:${name}`,
    failed: failedIds,
    waiting: waitingIds,
    states,
    counts: await queue.getJobCounts(),
  };
}

// ------------------------------------------------------------------- reserved
async function buildReserved() {
  const queue = await openQueue('attack-reserved');
  const first = await queue.add('normal', { n: 1 }, { jobId: 'r1' });
  check(first.id === 'r1', `Node gave ${first.id} for r1`);
  const activeKey = 'bull:attack-reserved:active';
  const typeBefore = await raw.type(activeKey);
  check(typeBefore === 'none', `${activeKey} was a ${typeBefore} before the add`);
  const reserved = await queue.add('reserved', { n: 2 }, { jobId: 'active' });
  check(reserved.id === 'active', `Node gave ${reserved.id} for the id active`);
  const typeAfter = await raw.type(activeKey);
  check(typeAfter === 'hash', `${activeKey} is a ${typeAfter}, not the hash the attack makes`);
  // Node's own getters trip over it too: that is why the dashboard refuses such ids.
  let nodeCounts;
  try {
    nodeCounts = { counts: await queue.getJobCounts() };
  } catch (err) {
    nodeCounts = { error: String(err.message || err) };
  }

  const healthy = await openQueue('attack-healthy');
  for (const jobId of ['h1', 'h2']) {
    const job = await healthy.add('fine', { jobId }, { jobId });
    check(job.id === jobId, `Node gave ${job.id} for ${jobId}`);
  }
  const healthyCounts = await healthy.getJobCounts();
  check(healthyCounts.waiting === 2, `attack-healthy counts ${JSON.stringify(healthyCounts)}`);
  return {
    queue: 'bull:attack-reserved',
    ids: [first.id, reserved.id],
    activeKeyType: { before: typeBefore, after: typeAfter },
    nodeGetJobCounts: nodeCounts,
    healthy: { queue: 'bull:attack-healthy', ids: ['h1', 'h2'], counts: healthyCounts },
  };
}

// ---------------------------------------------------------------------- flows
async function buildFlows() {
  const orders = await openQueue('orders');
  const payments = await openQueue('payments');
  const flows = new FlowProducer({ connection, prefix: 'bull' });
  flows.on('error', err => console.error('flow producer error:', err));
  closers.push(() => flows.close());
  const order = await flows.add({
    name: 'order',
    queueName: 'orders',
    data: { order: 1 },
    opts: { jobId: 'order-1' },
    children: [
      { name: 'pay', queueName: 'payments', data: { order: 1 }, opts: { jobId: 'pay-1' } },
    ],
  });
  check(
    order.job.id === 'order-1' && order.children[0].job.id === 'pay-1',
    'order-1 / pay-1 ids',
  );
  const invoice = await flows.add({
    name: 'invoice',
    queueName: 'payments',
    data: { invoice: 1 },
    opts: { jobId: 'invoice-1' },
    children: [
      { name: 'render', queueName: 'orders', data: { invoice: 1 }, opts: { jobId: 'render-1' } },
    ],
  });
  check(
    invoice.job.id === 'invoice-1' && invoice.children[0].job.id === 'render-1',
    'invoice-1 / render-1 ids',
  );

  // Only render-1 is waiting in orders (order-1 waits for its child): the worker fails just it.
  const failing = failingWorker('orders', 'orders-worker');
  try {
    await failing.failed('render-1');
  } finally {
    await failing.close();
  }
  const states = {};
  for (const [queue, jobId] of [
    [orders, 'order-1'],
    [orders, 'render-1'],
    [payments, 'pay-1'],
    [payments, 'invoice-1'],
  ]) {
    states[jobId] = await queue.getJobState(jobId);
  }
  const expected = {
    'order-1': 'waiting-children',
    'render-1': 'failed',
    'pay-1': 'waiting',
    'invoice-1': 'waiting-children',
  };
  check(same(states, expected), `flow states ${JSON.stringify(states)}`);
  const render = await orders.getJob('render-1');
  return {
    queues: ['bull:orders', 'bull:payments'],
    states,
    renderParentKey: render.parentKey,
    counts: { orders: await orders.getJobCounts(), payments: await payments.getJobCounts() },
  };
}

// ------------------------------------------------------------------------ big
async function buildBig() {
  const queue = await openQueue('attack-flow');
  const flows = new FlowProducer({ connection, prefix: 'bull' });
  flows.on('error', err => console.error('flow producer error:', err));
  closers.push(() => flows.close());
  const tree = await flows.add({
    name: 'big',
    queueName: 'attack-flow',
    opts: { jobId: 'big-parent' },
    children: [{ name: 'part', queueName: 'attack-flow', opts: { jobId: 'big-child' } }],
  });
  check(
    tree.job.id === 'big-parent' && tree.children[0].job.id === 'big-child',
    'big-parent / big-child ids',
  );
  const states = {
    'big-parent': await queue.getJobState('big-parent'),
    'big-child': await queue.getJobState('big-child'),
  };
  check(
    states['big-parent'] === 'waiting-children' && states['big-child'] === 'waiting',
    `big flow states ${JSON.stringify(states)}`,
  );
  const parent = await queue.getJob('big-parent');
  return {
    queue: 'bull:attack-flow',
    states,
    dependencies: await parent.getDependenciesCount(),
  };
}

async function main() {
  raw = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  closers.push(async () => raw.disconnect());
  await withTimeout(raw.connect(), 'connect');
  await withTimeout(wipeQueues(queuesOf(options.parts)), 'delete old queue keys');
  const out = {};
  if (options.parts.includes('ids')) out.ids = await buildIds();
  if (options.parts.includes('reserved')) out.reserved = await buildReserved();
  if (options.parts.includes('flows')) out.flows = await buildFlows();
  if (options.parts.includes('big')) out.big = await buildBig();
  return out;
}

let exitCode = 0;
let result;
try {
  result = await main();
} catch (err) {
  console.error('attack_state failed:', err);
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
  const text = JSON.stringify({ queues: created, ...result }, (_key, value) =>
    value === undefined ? null : value,
  );
  process.stdout.write(text + '\n', () => process.exit(0));
} else {
  process.exit(exitCode);
}
