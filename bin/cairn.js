#!/usr/bin/env node
// The `cairn` command. The implementation is compiled TypeScript (npm install builds it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/node/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('cairn: not built yet; run `npm install` (or `npm run build`) first');
  process.exit(1);
}
await import(main.href);
