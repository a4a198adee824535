// Load-shape results → the markdown table and the chart of the cluster and peers suites.
import type { DiskProbe } from './disk.js';
import type { Table } from './results.js';
import type { ShapeResult } from './shapes.js';
import { figure, PALETTE, type Panel, shortNumber } from './svg.js';

const ms = (v: number) =>
  Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '–';

export function shapeLabel(s: ShapeResult): string {
  return `${s.shape}, ${s.payloadBytes} B`;
}

export function shapeTable(title: string, shapes: ShapeResult[]): Table {
  return {
    title,
    header: ['shape', 'system', 'records/s', 'MB/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'records', 'settings'],
    numeric: ['records/s', 'MB/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'records'],
    rows: shapes.map((s) => [
      shapeLabel(s),
      s.system,
      Math.round(s.recordsPerSec).toLocaleString('en-US'),
      s.mbPerSec.toFixed(1),
      ms(s.latency.p50),
      ms(s.latency.p99),
      ms(s.latency.p999),
      s.records.toLocaleString('en-US'),
      Object.entries(s.settings)
        .filter(([k]) => !['seconds', 'warmupSeconds'].includes(k))
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ]),
  };
}

/** The best of several rounds of one measurement: the one with the most records/s. */
export function bestOf(rounds: ShapeResult[]): ShapeResult {
  return rounds.reduce((a, b) => (b.recordsPerSec > a.recordsPerSec ? b : a));
}

/**
 * The chart: throughput per shape and system (log scale), and p50 latency with a p99
 * whisker per shape and system. `payloadBytes` picks the payload shown (100 B by default).
 */
export function shapeChart(o: {
  title: string;
  subtitle: string[];
  shapes: ShapeResult[];
  systems: string[];
  payloadBytes: number;
}): string {
  const wanted = o.shapes.filter((s) => s.payloadBytes === o.payloadBytes && s.shape !== 'consume');
  const groups = [...new Set(wanted.map((s) => s.shape))];
  const find = (system: string, shape: string) =>
    wanted.find((s) => s.system === system && s.shape === shape);
  const series = (value: (s: ShapeResult) => number, whisker?: (s: ShapeResult) => number) =>
    o.systems.map((system, i) => ({
      name: system,
      color: PALETTE[i % PALETTE.length]!,
      values: groups.map((g) => {
        const s = find(system, g);
        return s === undefined ? undefined : value(s);
      }),
      ...(whisker
        ? {
            whiskers: groups.map((g) => {
              const s = find(system, g);
              return s === undefined ? undefined : whisker(s);
            }),
          }
        : {}),
    }));
  // Group labels under the bars are short; the tables keep the full names.
  const short = (g: string) =>
    g.replace('end to end, concurrency ', 'end to end, c').replace('concurrency ', 'c');
  const panels: Panel[] = [
    {
      title: `Throughput, ${o.payloadBytes} B records (higher is better)`,
      unit: 'records/s',
      groups: groups.map(short),
      series: series((s) => s.recordsPerSec),
      log: true,
    },
    {
      title: `Latency per append call (lower is better)`,
      unit: 'ms: bar p50, whisker p99',
      groups: groups.map(short),
      series: series(
        (s) => s.latency.p50,
        (s) => s.latency.p99,
      ),
      log: true,
      format: (v) => shortNumber(v),
    },
  ];
  return figure({ title: o.title, subtitle: o.subtitle, panels });
}

export function diskTable(probes: DiskProbe[]): Table {
  return {
    title: 'The disk under every fsync: one durable write, measured in this run',
    header: ['write', 'bytes', 'writes', 'p50 ms', 'p99 ms', 'mean ms', 'MB/s'],
    numeric: ['bytes', 'writes', 'p50 ms', 'p99 ms', 'mean ms', 'MB/s'],
    rows: probes.map((p) => [
      p.mode,
      String(p.writeBytes),
      String(p.writes),
      ms(p.latency.p50),
      ms(p.latency.p99),
      ms(p.latency.mean),
      (p.writeBytes / 1e6 / (p.latency.mean / 1000)).toFixed(1),
    ]),
  };
}
