// Node BullMQ's own Prometheus exposition of some queues.
//
//   node prometheus.mjs <redis-url>   (stdin: JSON [{"name": ..., "prefix": ...}, ...])
//
// Prints one JSON line: {"text": the queues' exportPrometheusMetrics() outputs joined by newlines,
// "failed": [{name, prefix, error}] for queues Node could not export (keys of the wrong type)}.
import { Queue } from 'bullmq';

const [url] = process.argv.slice(2);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const wanted = JSON.parse(input);

const texts = [];
const failed = [];
for (const { name, prefix } of wanted) {
  const queue = new Queue(name, { connection: { url }, prefix });
  try {
    texts.push(await queue.exportPrometheusMetrics());
  } catch (error) {
    failed.push({ name, prefix, error: String(error) });
  } finally {
    await queue.close();
  }
}
console.log(JSON.stringify({ text: texts.join('\n'), failed }));
process.exit(0);
