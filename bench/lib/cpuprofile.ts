// Summaries of V8 CPU profiles (`node --cpu-prof`): where a process spent its time, by
// area (idle, GC, gRPC, protobuf, the Raft core, storage, …) and by function. The cluster
// benchmark writes profiles with --profile; this turns them into a few lines a person can
// read next to the numbers.
//
//   node dist/bench/lib/cpuprofile.js FILE.cpuprofile [...] [--top=N]
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Area → ms of self time. */
  areas: [string, number][];
  /** "function (file:line)" → ms of self time. */
  functions: [string, number][];
}

/** Which part of the program a frame belongs to (by its script URL). */
export function areaOf(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'program (native, unattributed)';
  if (url.includes('@grpc/grpc-js')) return 'grpc-js';
  if (url.includes('@bufbuild/protobuf') || url.includes('/proto/gen/')) return 'protobuf';
  if (url.includes('msgpackr')) return 'msgpackr';
  if (url.includes('pino')) return 'logging';
  if (url.includes('/raft/src/')) return 'cairn raft';
  if (url.includes('/node/src/storage/')) return 'cairn storage';
  if (url.includes('/node/src/peer/')) return 'cairn peer transport';
  if (url.includes('/node/src/api/')) return 'cairn api';
  if (url.includes('/node/src/')) return 'cairn node';
  if (url.includes('/client/src/')) return 'cairn client';
  if (url.includes('/core-wasm/') || url.startsWith('wasm://')) return 'core-wasm';
  if (url.includes('/bench/')) return 'bench';
  if (url.startsWith('node:internal/http2') || url.includes('internal/http2')) return 'node http2';
  if (url.startsWith('node:internal/fs') || url.startsWith('node:fs')) return 'node fs';
  if (url.startsWith('node:internal/stream') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:') || url === '') return `node internals${url === '' ? ' / native' : ''}`;
  if (url.includes('node_modules/nats')) return 'nats client';
  if (url.includes('node_modules/etcd3')) return 'etcd3 client';
  return 'other';
}

export function summarize(file: string): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; it is spent in the node sampled at i.
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us / 1000);
    const short = url.replace(/^.*\/(node_modules\/)?/, '');
    const key = `${functionName || '(anonymous)'} (${short}:${lineNumber + 1})`;
    functions.set(key, (functions.get(key) ?? 0) + us / 1000);
    total += us / 1000;
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { file, totalMs: total, areas: sorted(areas), functions: sorted(functions) };
}

export function formatSummary(s: ProfileSummary, top = 12): string {
  const busy = s.totalMs - (s.areas.find(([a]) => a === 'idle')?.[1] ?? 0);
  const lines = [
    `${s.file}: ${(s.totalMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy`,
  ];
  for (const [a, ms] of s.areas.filter(([a]) => a !== 'idle'))
    lines.push(
      `  ${a.padEnd(32)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${((100 * ms) / busy).toFixed(1).padStart(5)}% of busy`,
    );
  lines.push('  top functions (self time):');
  for (const [f, ms] of s.functions.filter(([f]) => !f.startsWith('(idle)')).slice(0, top))
    lines.push(`    ${(ms / 1000).toFixed(2).padStart(6)} s  ${f}`);
  return lines.join('\n');
}

/** Starts profiling this process; the returned function stops and writes the profile to `file`. */
export async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 12);
  for (const f of args.filter((a) => !a.startsWith('--'))) console.log(formatSummary(summarize(f), top));
}
