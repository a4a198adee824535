// Benchmark results: every suite returns rows of measurements; they are printed as a
// markdown table and saved, with the machine they ran on, under bench/results/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export interface Row {
  /** What was measured, e.g. "crc32c 64 KiB". */
  name: string;
  /** The system or implementation, e.g. "cairn", "js slicing-by-8", "lz4 -b1". */
  subject: string;
  value: number;
  unit: string;
  /** Free-form details: sizes, iterations, settings. */
  notes?: string;
}

export interface Ratio {
  /** What the ratio compares, e.g. "crc32c cairn / js slicing-by-8 (64 KiB)". */
  name: string;
  value: number;
  /** The target the project set, when there is one (e.g. ≥ 2). */
  target?: number;
  /** Whether a larger ratio is better (default true). */
  higherIsBetter?: boolean;
}

export interface SuiteResult {
  rows: Row[];
  ratios: Ratio[];
  settings?: Record<string, unknown>;
  notes?: string[];
}

export function machine(): Record<string, unknown> {
  let disk = 'unknown';
  try {
    disk = execFileSync('df', ['-h', '.'], { encoding: 'utf8' }).trim().split('\n').pop() ?? disk;
  } catch {}
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    disk,
  };
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

export function markdown(suite: string, result: SuiteResult, when: string): string {
  const lines = [`# bench ${suite} — ${when}`, ''];
  const m = machine();
  lines.push(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`, '');
  lines.push('| measurement | subject | value | unit | notes |', '|---|---|---:|---|---|');
  for (const r of result.rows)
    lines.push(`| ${r.name} | ${r.subject} | ${fmt(r.value)} | ${r.unit} | ${r.notes ?? ''} |`);
  if (result.ratios.length > 0) {
    lines.push('', '| ratio (same run) | value | target | met |', '|---|---:|---:|---|');
    for (const r of result.ratios) {
      const better = r.higherIsBetter ?? true;
      const met =
        r.target === undefined ? '' : (better ? r.value >= r.target : r.value <= r.target) ? 'yes' : 'no';
      const target = r.target === undefined ? '' : `${better ? '≥' : '≤'} ${r.target}`;
      lines.push(`| ${r.name} | ${fmt(r.value)} | ${target} | ${met} |`);
    }
  }
  for (const n of result.notes ?? []) lines.push('', n);
  return `${lines.join('\n')}\n`;
}

/** Prints the result and writes bench/results/<suite>-<date>.{json,md} and <suite>-latest.*. */
export function saveResult(suite: string, result: SuiteResult): string[] {
  const when = new Date().toISOString();
  const dir = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const md = markdown(suite, result, when);
  console.log(`\n${md}`);
  const json = JSON.stringify({ suite, when, machine: machine(), ...result }, null, 2);
  const stamp = when.slice(0, 10);
  const files = [`${suite}-${stamp}.json`, `${suite}-${stamp}.md`];
  writeFileSync(dir + files[0], `${json}\n`);
  writeFileSync(dir + files[1], md);
  return files.map((f) => `bench/results/${f}`);
}
