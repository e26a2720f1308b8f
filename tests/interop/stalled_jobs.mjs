// Jobs stalled for real: a Node BullMQ 6 worker takes jobs and is killed (SIGKILL) while it holds them;
// a second worker's stall checker then finds their locks expired, moves them back to wait and writes
// `stalled` events to the queue's stream, as in production when a worker process dies.
//
//   node stalled_jobs.mjs <redis-url> <queue> <jobs>
//
// Prints one JSON line: {"stalled": [job ids the checker reported], "counts": queue.getJobCounts()}.
// Stops itself after 60 s.
import { fork } from 'node:child_process';
import { Queue, Worker } from 'bullmq';

const [url, name, rawJobs] = process.argv.slice(2);
const connection = { url };
setTimeout(() => {
  console.error('stalled_jobs.mjs: timed out');
  process.exit(3);
}, 60000).unref();

if (process.env.STALLED_JOBS_ROLE === 'holder') {
  // The worker that dies: it takes every job and never finishes one.
  let held = 0;
  new Worker(
    name,
    async () => {
      held += 1;
      if (held === Number(rawJobs)) process.send('holding');
      await new Promise(() => {});
    },
    // No stall check of its own: it would hold the `stalled-check` key for its default 30 s interval.
    { connection, concurrency: Number(rawJobs), lockDuration: 1500, skipStalledCheck: true },
  );
} else {
  const queue = new Queue(name, { connection });
  const jobs = Array.from({ length: Number(rawJobs) }, (_, i) => ({ name: 'work', data: { i }, opts: { jobId: `s-${i}` } }));
  await queue.addBulk(jobs);
  const holder = fork(new URL(import.meta.url).pathname, process.argv.slice(2), {
    env: { ...process.env, STALLED_JOBS_ROLE: 'holder' },
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
  // Only the stall checker runs (no processor, so the moved jobs stay in wait): every stalledInterval
  // it moves the jobs whose locks expired since its previous run.
  await checker.startStalledCheckTimer();
  while (stalled.length < jobs.length) await new Promise(resolve => setTimeout(resolve, 100));
  const counts = await queue.getJobCounts();
  await checker.close();
  await queue.close();
  console.log(JSON.stringify({ stalled: stalled.sort(), counts }));
  process.exit(0);
}
