// `npm run bench [-- suite ...]`: runs benchmark suites and saves their results.
// A suite is a module bench/<name>.ts exporting `run(args): Promise<SuiteResult>`.
// With no suite named, every suite in SUITES runs in order.
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type SuiteResult, saveResult } from './lib/results.js';

/** Every suite, in the order `npm run bench` runs them. */
const SUITES = ['core', 'raft', 'storage', 'sim', 'cluster', 'peers'];

interface SuiteModule {
  run(args: string[]): Promise<SuiteResult>;
}

const argv = process.argv.slice(2);
const named = argv.filter((a) => !a.startsWith('-'));
// --save-as=NAME (one suite only): results go to bench/results/NAME-<date>.*, so a
// diagnostic run (e.g. one shape with --profile) does not replace the suite's latest.
const saveAs = argv.findLast((a) => a.startsWith('--save-as='))?.slice('--save-as='.length);
const flags = argv.filter((a) => a.startsWith('-') && !a.startsWith('--save-as='));
const suites = named.length > 0 ? named : SUITES;
if (saveAs !== undefined && (suites.length !== 1 || !/^[A-Za-z0-9._-]+$/.test(saveAs))) {
  console.error('bench: --save-as=NAME needs exactly one suite and a plain file name');
  process.exit(1);
}

let failed = false;
for (const name of suites) {
  const url = new URL(`./${name}.js`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    if (named.length > 0) {
      console.error(`bench: no suite '${name}' (known: ${SUITES.join(', ')})`);
      failed = true;
    }
    continue;
  }
  console.log(`\n== bench ${name}`);
  const mod = (await import(url.href)) as SuiteModule;
  const loadAverageAtStart = loadavg();
  const result = { ...(await mod.run(flags)), loadAverageAtStart };
  const files = saveResult(name, result, saveAs);
  console.log(`saved ${files.join(', ')}`);
}
process.exitCode = failed ? 1 : 0;
