// Versions of what a benchmark measured, and the one-line progress log of a shape.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ShapeResult } from './shapes.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The version in an installed npm package's package.json. */
export function npmVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(`${root}node_modules/${name}/package.json`, 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

/** Cairn's own version: package version, commit, and whether the tree had changes. */
export function cairnVersions(): Record<string, string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    // Results a run writes (tracked files under bench/results) do not make the code dirty.
    const dirty = execFileSync(
      'git',
      ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results'],
      { encoding: 'utf8' },
    ).trim();
    if (dirty !== '') commit += ' (with uncommitted changes)';
  } catch {}
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };
  return {
    cairn: `${pkg.version} @ ${commit}`,
    node: process.version,
    '@grpc/grpc-js': npmVersion('@grpc/grpc-js'),
  };
}

export function logShape(s: ShapeResult): void {
  const l = s.latency;
  const lat = Number.isFinite(l.p50)
    ? ` p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} p99.9 ${l.p999.toFixed(2)} ms`
    : '';
  console.log(
    `${s.system.padEnd(20)} ${s.shape.padEnd(28)} ${String(Math.round(s.payloadBytes)).padStart(5)} B ` +
      `${Math.round(s.recordsPerSec).toString().padStart(9)} rec/s ${s.mbPerSec.toFixed(1).padStart(7)} MB/s${lat} (${s.records} records)`,
  );
}
