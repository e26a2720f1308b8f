// Job schedulers made and read by real Node BullMQ 6, for the scheduler interop tests.
//
//   node schedulers.mjs <redis-url> <queue> create   upserts "nightly" (cron with tz) and "pulse"
//                                                    (every 60 s, limit 3)
//   node schedulers.mjs <redis-url> <queue> list     prints Node's getJobSchedulers (soonest first)
// Prints one JSON line: {"schedulers": [...], "count": N}.
import { Queue } from 'bullmq';

const [url, name, command] = process.argv.slice(2);
setTimeout(() => {
  console.error('schedulers.mjs: timed out');
  process.exit(3);
}, 30000).unref();

const queue = new Queue(name, { connection: { url } });
if (command === 'create') {
  await queue.upsertJobScheduler(
    'nightly',
    { pattern: '0 30 3 * * *', tz: 'America/New_York' },
    { name: 'report', data: { kind: 'nightly' }, opts: { attempts: 2 } },
  );
  await queue.upsertJobScheduler('pulse', { every: 60000, limit: 3 }, { name: 'ping', data: { n: 1 } });
}
const schedulers = await queue.getJobSchedulers(0, -1, true);
const count = await queue.getJobSchedulersCount();
await queue.close();
console.log(JSON.stringify({ schedulers, count }));
process.exit(0);
