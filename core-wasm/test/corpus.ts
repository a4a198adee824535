// Deterministic test and benchmark data: JSON-ish log records, English-like text,
// random bytes, zeros, and mixes of them.
import type { Rng } from './rng.js';

const WORDS =
  'the of and to in is was for on that with as by at from his her this which be are an or had not but what all were when we there can been has more if will one so no out up into them about than then some could would make like time only its now over also after way many even most made before'.split(
    ' ',
  );
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const SERVICES = ['api', 'billing', 'search', 'auth', 'ingest'];

export function text(rng: Rng, bytes: number): Uint8Array {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = WORDS[rng.int(WORDS.length)]!;
    const sep = rng.int(12) === 0 ? '.\n' : ' ';
    parts.push(w, sep);
    n += w.length + sep.length;
  }
  return new TextEncoder().encode(parts.join('')).subarray(0, bytes);
}

export function logs(rng: Rng, bytes: number): Uint8Array {
  const lines: string[] = [];
  let n = 0;
  let t = 1_700_000_000_000;
  while (n < bytes) {
    t += rng.int(50);
    const line = `{"ts":${t},"level":"${LEVELS[rng.int(LEVELS.length)]}","service":"${SERVICES[rng.int(SERVICES.length)]}","request":"${rng.u32().toString(16)}","latency_ms":${rng.int(900)},"path":"/v1/${WORDS[rng.int(WORDS.length)]}/${rng.int(10000)}","msg":"${WORDS[rng.int(WORDS.length)]} ${WORDS[rng.int(WORDS.length)]} ${WORDS[rng.int(WORDS.length)]}"}\n`;
    lines.push(line);
    n += line.length;
  }
  return new TextEncoder().encode(lines.join('')).subarray(0, bytes);
}

/** Logs, text and random bytes in roughly 60/30/10 proportions, in 64 KiB-ish pieces. */
export function mixed(rng: Rng, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let p = 0;
  while (p < bytes) {
    const n = Math.min(bytes - p, 16384 + rng.int(100_000));
    const kind = rng.int(10);
    out.set(kind < 6 ? logs(rng, n) : kind < 9 ? text(rng, n) : rng.bytes(n), p);
    p += n;
  }
  return out;
}
