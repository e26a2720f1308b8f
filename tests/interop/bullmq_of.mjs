// Which Node BullMQ a script of this folder runs with: the copy installed under $BULLMQ_DIR (a folder
// holding node_modules/bullmq, e.g. tests/interop5 for BullMQ 5), or this folder's own (BullMQ 6).
//
//   import { bullmq, version } from './bullmq_of.mjs';
//   const { Queue, Worker } = bullmq;
//
// ESM ignores NODE_PATH, so the package is imported by its absolute path; its own imports (ioredis)
// then resolve from where it is installed.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(resolve(process.env.BULLMQ_DIR || here), 'node_modules', 'bullmq');

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

export const version = manifest.version;
// What `import 'bullmq'` loads: the package has no `exports` map, so its `main` (CommonJS, whose named
// exports Node finds for ESM importers).
export const bullmq = await import(pathToFileURL(join(root, manifest.main)).href);
