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

/** A table of its own in the markdown (e.g. one line per load shape and system). */
export interface Table {
  title: string;
  header: string[];
  /** Columns whose header is in here are right-aligned (numbers). */
  numeric?: string[];
  rows: string[][];
}

export interface SuiteResult {
  rows: Row[];
  ratios: Ratio[];
  settings?: Record<string, unknown>;
  notes?: string[];
  /** Versions of everything measured (servers, client libraries). */
  versions?: Record<string, string>;
  /** Shown before the rows. */
  tables?: Table[];
  /** A chart, saved beside the markdown as <suite>-<date>.svg. */
  svg?: string;
  /** os.loadavg() when the suite started (set by run.ts): how busy the shared machine was. */
  loadAverageAtStart?: number[];
  /** Structured measurements kept in the JSON (not printed). */
  data?: unknown;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Record<string, unknown> {
  // The disk the benchmarks' temp directories live on: its filesystem and device.
  const df = sh('df', ['-T', os.tmpdir()]).split('\n').pop() ?? '';
  const [device = 'unknown', fsType = 'unknown', sizeKiB = '0'] = df.split(/\s+/);
  const blockName = device.replace(/^\/dev\//, '').replace(/[0-9]+$/, '');
  const rotational = sh('cat', [`/sys/block/${blockName}/queue/rotational`]);
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    disk: `${device} (${fsType}, ${Math.round(Number(sizeKiB) / 2 ** 20)} GiB, ${
      rotational === '1'
        ? 'reports rotational (a virtual disk)'
        : rotational === '0'
          ? 'non-rotational'
          : 'type unknown'
    }) holding ${os.tmpdir()}`,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

/**
 * Whether a ratio meets its target, and if not by what factor it falls short:
 * "met", "missed: 4.2× short" (it would have to be 4.2 times larger) or, for a ratio where
 * lower is better, "missed: 2.0× over". Empty without a target; "not measured" for NaN.
 */
export function verdict(r: Ratio): string {
  if (r.target === undefined) return '';
  if (!Number.isFinite(r.value) || r.value <= 0) return 'not measured';
  const better = r.higherIsBetter ?? true;
  if (better ? r.value >= r.target : r.value <= r.target) return 'met';
  const factor = better ? r.target / r.value : r.value / r.target;
  return `missed: ${factor.toFixed(factor >= 10 ? 0 : 1)}× ${better ? 'short' : 'over'}`;
}

export function markdown(suite: string, result: SuiteResult, when: string): string {
  const lines = [`# bench ${suite} — ${when}`, ''];
  const m = machine();
  lines.push(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`);
  const start = result.loadAverageAtStart?.map((x) => x.toFixed(2)).join(', ');
  lines.push(
    '',
    `Disk: ${m.disk}; load average (1, 5, 15 min)${start === undefined ? '' : ` at the start: ${start};`} at the end: ${(m.loadAverage as number[]).join(', ')}`,
    '',
  );
  if (result.versions !== undefined && Object.keys(result.versions).length > 0) {
    lines.push(
      `Versions: ${Object.entries(result.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ')}`,
      '',
    );
  }
  for (const t of result.tables ?? []) {
    lines.push(`## ${t.title}`, '');
    lines.push(`| ${t.header.join(' | ')} |`);
    lines.push(`|${t.header.map((h) => (t.numeric?.includes(h) ? '---:' : '---')).join('|')}|`);
    for (const r of t.rows) lines.push(`| ${r.join(' | ')} |`);
    lines.push('');
  }
  if (result.rows.length > 0) {
    lines.push('| measurement | subject | value | unit | notes |', '|---|---|---:|---|---|');
    for (const r of result.rows)
      lines.push(`| ${r.name} | ${r.subject} | ${fmt(r.value)} | ${r.unit} | ${r.notes ?? ''} |`);
  }
  if (result.ratios.length > 0) {
    lines.push('', '| ratio (same run) | value | target | met? |', '|---|---:|---:|---|');
    for (const r of result.ratios) {
      const target = r.target === undefined ? '' : `${(r.higherIsBetter ?? true) ? '≥' : '≤'} ${r.target}`;
      lines.push(`| ${r.name} | ${fmt(r.value)} | ${target} | ${verdict(r)} |`);
    }
  }
  for (const n of result.notes ?? []) lines.push('', n);
  if (result.settings !== undefined && Object.keys(result.settings).length > 0) {
    lines.push(
      '',
      `Settings: ${Object.entries(result.settings)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Prints the result and writes bench/results/<stem>-<date>.{json,md} (and .svg when it has a chart); the stem is the suite's name unless given. */
export function saveResult(suite: string, result: SuiteResult, stem = suite): string[] {
  const when = new Date().toISOString();
  const dir = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = when.slice(0, 10);
  const { svg, ...kept } = result;
  const svgFile = `${stem}-${stamp}.svg`;
  let md = markdown(suite, result, when);
  if (svg !== undefined) md += `\n![${suite} chart](${svgFile})\n`;
  console.log(`\n${md}`);
  const json = JSON.stringify({ suite, when, machine: machine(), ...kept }, null, 2);
  const files = [`${stem}-${stamp}.json`, `${stem}-${stamp}.md`];
  writeFileSync(dir + files[0], `${json}\n`);
  writeFileSync(dir + files[1], md);
  if (svg !== undefined) {
    writeFileSync(dir + svgFile, svg);
    files.push(svgFile);
  }
  return files.map((f) => `bench/results/${f}`);
}
