// `cairn sim`: runs deterministic simulations of a Cairn cluster. One seed is one run; the
// same seed (with the same options) is the same run, with the same trace hash, anywhere.
//
//   cairn sim [--seed S] [--nodes N] [--time 10m] [--faults list] [--swarm RUNS]
//             [--json] [--report out.html]
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../../node/src/cli/main.js';
import { describeOptions, FAULT_GROUPS, FAULTS, MAX_NODES, OptionsError, parseFaults } from './options.js';
import { MAX_SEED } from './random.js';
import { renderReport } from './report.js';
import { type SimResult, type SimulateInput, simulate } from './simulate.js';

const usage = `usage: cairn sim [--seed S] [--nodes N] [--time 10m] [--faults LIST] [--swarm RUNS] [--json] [--report FILE]
  --seed S       the run's seed (default: a random one, printed); with --swarm, the first seed
  --nodes N      nodes in the cluster, 1-${MAX_NODES} (default: the seed picks)
  --time T       virtual time of the fault phase: 500ms, 30s, 10m or seconds (default 30s)
  --faults LIST  faults to inject, comma-separated; a leading '-' removes one (default: the seed
                 picks). Faults: ${FAULTS.join(', ')}.
                 Groups: ${Object.keys(FAULT_GROUPS).join(', ')}.
  --swarm RUNS   run RUNS seeds, S, S+1, …, each with its own picked options; stop at none
  --json         print results as JSON (one object per run)
  --report FILE  write an HTML page with a timeline of the run (with --swarm: of the first failure)
Exit status: 0 when every run passed, 1 when a run found a violation, 2 on bad usage.`;

/** Parses "500ms", "30s", "10m", "1h", or a number of seconds; returns ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new OptionsError(`'${text}' is not a duration (e.g. 500ms, 30s, 10m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  if (!(ms >= 1) || !Number.isSafeInteger(Math.round(ms)))
    throw new OptionsError(`duration ${text} is out of range`);
  return Math.round(ms);
}

function parseInteger(text: string, what: string, lo: number, hi: number): number {
  if (!/^\d+$/.test(text.trim())) throw new OptionsError(`${what} must be an integer, got '${text}'`);
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < lo || v > hi)
    throw new OptionsError(`${what} must be in [${lo}, ${hi}], got ${text}`);
  return v;
}

/** What a failed run prints: enough to understand it and to run it again. */
export function describeFailure(r: SimResult): string[] {
  const v = r.violation!;
  return [
    `FAILED: ${v.property} at t=${(v.atUs / 1e6).toFixed(6)}s (seed ${r.seed})`,
    `  ${v.message}`,
    ...(r.anomalies.length > 1
      ? ['anomalies:', ...r.anomalies.map((a) => `  ${a.property}: ${a.message}`)]
      : []),
    ...(r.warnings.length > 0 ? ['warnings:', ...r.warnings.map((w) => `  ${w}`)] : []),
    'options:',
    ...describeOptions(r.options).map((l) => `  ${l}`),
    'last events before it:',
    ...v.lastEvents.map((l) => `  ${l}`),
    `reproduce: cairn sim --seed ${r.seed} --time ${r.options.timeMs}ms --nodes ${r.options.nodes} --faults ${r.options.faults.join(',') || 'none'}`,
  ];
}

function summary(r: SimResult): string {
  const s = r.stats;
  const ok = Object.entries(s.operations)
    .filter(([k]) => k.endsWith(':ok'))
    .reduce((n, [, v]) => n + v, 0);
  return `seed ${r.seed}: ${r.passed ? 'passed' : `FAILED (${r.violation!.property})`} · ${r.options.nodes} nodes · ${(s.simulatedMs / 1000).toFixed(1)} s simulated in ${(s.wallMs / 1000).toFixed(2)} s · ${s.events} events · ${ok} operations ok · ${s.faultsStruck} faults · trace ${r.traceHash}`;
}

function toJson(r: SimResult): string {
  const { details: _details, ...rest } = r;
  return JSON.stringify(rest);
}

export const simCommand: Command = {
  summary: 'run deterministic simulations of a cluster under faults',
  async run(argv) {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          seed: { type: 'string' },
          nodes: { type: 'string' },
          time: { type: 'string' },
          faults: { type: 'string' },
          swarm: { type: 'string' },
          json: { type: 'boolean' },
          report: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (err) {
      console.error(`cairn sim: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    if (values['help']) {
      console.log(usage);
      return 0;
    }
    let base: Omit<SimulateInput, 'seed'>;
    let first: number;
    let runs: number;
    try {
      first =
        values['seed'] === undefined
          ? randomInt(0, 2 ** 31)
          : parseInteger(values['seed'] as string, '--seed', 0, MAX_SEED);
      runs =
        values['swarm'] === undefined ? 1 : parseInteger(values['swarm'] as string, '--swarm', 1, 1_000_000);
      base = {
        ...(values['nodes'] !== undefined
          ? { nodes: parseInteger(values['nodes'] as string, '--nodes', 1, MAX_NODES) }
          : {}),
        ...(values['time'] !== undefined ? { timeMs: parseDuration(values['time'] as string) } : {}),
        ...(values['faults'] !== undefined ? { faults: parseFaults(values['faults'] as string) } : {}),
      };
    } catch (err) {
      console.error(`cairn sim: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    const json = values['json'] === true;
    const reportFile = values['report'] as string | undefined;
    const swarm = values['swarm'] !== undefined;
    const failed: number[] = [];
    let reported = false;
    for (let k = 0; k < runs; k++) {
      const seed = first + k;
      let r: SimResult;
      try {
        r = await simulate({
          ...base,
          seed,
          keepDetails: reportFile !== undefined && !reported,
          ...(!json && !swarm ? { onLine: (line: string) => console.log(line) } : {}),
        });
      } catch (err) {
        if (err instanceof OptionsError) {
          console.error(`cairn sim: ${err.message}`);
          return 2;
        }
        throw err;
      }
      if (json) console.log(toJson(r));
      else {
        console.log(summary(r));
        if (!r.passed) console.log(describeFailure(r).join('\n'));
      }
      if (!r.passed) failed.push(seed);
      if (reportFile !== undefined && !reported && (!swarm || !r.passed)) {
        writeFileSync(reportFile, renderReport(r));
        reported = true;
        if (!json) console.log(`report: ${reportFile}`);
      }
    }
    if (swarm && !json) {
      console.log(
        `${runs - failed.length} of ${runs} runs passed${failed.length > 0 ? `; failed seeds: ${failed.join(', ')}` : ''}`,
      );
    }
    return failed.length === 0 ? 0 : 1;
  },
};
