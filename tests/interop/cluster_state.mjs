// Builds BullMQ queues in a Redis Cluster with the real Node BullMQ, over an ioredis Cluster connection.
//
//   node cluster_state.mjs <host:port>[,<host:port>...]
//
// Every queue's keys share one hash slot, as BullMQ requires on a cluster: three prefixes are hash tags
// ({orders}, {reporting}, {billing}), and one queue keeps the default prefix `bull` with the tag in its name
// (bull:{notifications}). On the 3-master cluster of tests/support/redis_cluster.py the four slots fall on
// three different masters (slot ranges 0-5460, 5461-10922, 10923-16383).
//
// Each queue gets 3 completed, 2 failed, 2 delayed and 4 waiting jobs (and no other), made by a Worker
// sharing the Cluster connection. Prints ONE JSON line on stdout:
//   {"queues": [{"prefix", "name", "slot", "node": "host:port", "counts": {...}}, ...]}
// and exits 0 once every connection is closed. Anything else goes to stderr. A rerun first obliterates the
// queues it builds, so it gives the same shape.
import { Queue, Worker } from 'bullmq';
import { Cluster } from 'ioredis';

const HOUR = 3600000;
const STEP_TIMEOUT_MS = 10000; // one step
const TOTAL_TIMEOUT_MS = 30000; // the whole script

const seeds = process.argv[2];
if (!seeds) {
  console.error('usage: node cluster_state.mjs <host:port>[,<host:port>...]');
  process.exit(2);
}

// Never hang: a hard deadline for the whole script.
setTimeout(() => {
  console.error(`cluster_state: timed out after ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, TOTAL_TIMEOUT_MS).unref();

const QUEUES = [
  { prefix: '{orders}', name: 'email' },
  { prefix: '{reporting}', name: 'daily' },
  { prefix: '{billing}', name: 'invoices' },
  { prefix: 'bull', name: '{notifications}' },
];

const COUNTS = { completed: 3, failed: 2, delayed: 2, waiting: 4 };

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const startupNodes = seeds.split(',').map(seed => {
  const [host, port] = seed.split(':');
  return { host, port: Number(port) };
});

// BullMQ's docs: an ioredis Cluster, with maxRetriesPerRequest null (BullMQ refuses a Worker without it;
// for a Cluster it reads the option from redisOptions).
const connection = new Cluster(startupNodes, {
  redisOptions: { maxRetriesPerRequest: null },
});
connection.on('error', error => console.error(`cluster_state: ${error.message}`));

// slot -> "host:port" of the master serving it, from CLUSTER SLOTS.
async function slotOwners() {
  const owners = new Map();
  for (const [first, last, [host, port]] of await connection.cluster('SLOTS')) {
    owners.set([first, last], `${host}:${port}`);
  }
  return slot => {
    for (const [[first, last], node] of owners) {
      if (first <= slot && slot <= last) return node;
    }
    return null;
  };
}

async function build({ prefix, name }) {
  const queue = new Queue(name, { connection, prefix });
  await withTimeout(queue.waitUntilReady(), `${prefix}:${name} ready`);
  await withTimeout(queue.obliterate({ force: true }), `${prefix}:${name} obliterate`);

  // Completed and failed first: the worker takes every waiting job, so the waiting ones are added after.
  const processed = COUNTS.completed + COUNTS.failed;
  let finished = 0;
  let allFinished;
  const done = new Promise(resolve => {
    allFinished = resolve;
  });
  const worker = new Worker(
    name,
    async job => {
      if (job.data.fail) throw new Error(`planned failure of ${job.id}`);
      return { ok: job.id };
    },
    { connection, prefix, autorun: false },
  );
  const count = () => {
    finished += 1;
    if (finished === processed) allFinished();
  };
  worker.on('completed', count);
  worker.on('failed', count);
  worker.on('error', error => console.error(`cluster_state worker ${prefix}:${name}: ${error.message}`));

  const jobs = [];
  for (let i = 0; i < COUNTS.completed; i += 1) jobs.push({ name: 'ok', data: { i } });
  for (let i = 0; i < COUNTS.failed; i += 1) jobs.push({ name: 'boom', data: { i, fail: true } });
  await withTimeout(queue.addBulk(jobs), `${prefix}:${name} add processed`);
  worker.run().catch(error => console.error(`cluster_state run ${prefix}:${name}: ${error.message}`));
  await withTimeout(done, `${prefix}:${name} processing`);
  await withTimeout(worker.close(), `${prefix}:${name} worker close`);

  for (let i = 0; i < COUNTS.delayed; i += 1) {
    await queue.add('later', { i }, { delay: (i + 1) * HOUR });
  }
  for (let i = 0; i < COUNTS.waiting; i += 1) {
    await queue.add('pending', { i });
  }
  const counts = await queue.getJobCounts('completed', 'failed', 'delayed', 'waiting', 'active');
  await queue.close();
  return counts;
}

try {
  await withTimeout(
    new Promise((resolve, reject) => {
      connection.once('ready', resolve);
      connection.once('end', () => reject(new Error('cluster connection ended')));
    }),
    'cluster ready',
  );
  const owner = await slotOwners();
  const queues = [];
  for (const queue of QUEUES) {
    const counts = await build(queue);
    const slot = Number(await connection.cluster('KEYSLOT', `${queue.prefix}:${queue.name}:meta`));
    queues.push({ ...queue, slot, node: owner(slot), counts });
  }
  await connection.quit();
  process.stdout.write(`${JSON.stringify({ queues })}\n`);
} catch (error) {
  console.error(`cluster_state: ${error.stack || error}`);
  connection.disconnect();
  process.exit(1);
}
