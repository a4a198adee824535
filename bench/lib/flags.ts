// `--name=value` flags of a suite, with defaults; every value used is recorded in the
// results' settings, so a result always says how it was measured.

export class Flags {
  readonly used: Record<string, number | string | boolean> = {};

  constructor(private readonly args: string[]) {
    for (const a of args) {
      if (!/^--[a-z0-9-]+(=.*)?$/.test(a)) throw new Error(`bad flag '${a}': expected --name=value`);
    }
  }

  private raw(name: string): string | undefined {
    const hit = this.args.findLast((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (hit === undefined) return undefined;
    return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : 'true';
  }

  number(name: string, fallback: number): number {
    const raw = this.raw(name);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number ≥ 0, not '${raw}'`);
    this.used[name] = v;
    return v;
  }

  /** A size in bytes: a number with an optional unit, `268435456`, `256MiB`, `1GiB`, `64KiB`. */
  bytes(name: string, fallback: number): number {
    const raw = this.raw(name);
    const v = raw === undefined ? fallback : parseBytes(raw);
    if (v === undefined)
      throw new Error(`--${name} must be a size such as 268435456, 256MiB or 1GiB, not '${raw}'`);
    this.used[name] = v;
    return v;
  }

  numbers(name: string, fallback: number[]): number[] {
    const raw = this.raw(name);
    const v = raw === undefined ? fallback : raw.split(',').map(Number);
    if (v.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`--${name} must list numbers ≥ 0`);
    this.used[name] = v.join(',');
    return v;
  }

  string(name: string, fallback: string): string {
    const v = this.raw(name) ?? fallback;
    this.used[name] = v;
    return v;
  }

  bool(name: string): boolean {
    const raw = this.raw(name);
    const v = raw !== undefined && raw !== 'false' && raw !== '0';
    this.used[name] = v;
    return v;
  }
}

const UNITS: Record<string, number> = { '': 1, B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

/** `256MiB` → 268435456; undefined when it is not a whole, non-negative size. */
export function parseBytes(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB)?$/.exec(text.trim());
  if (m === null) return undefined;
  const v = Number(m[1]) * UNITS[m[2] ?? '']!;
  return Number.isSafeInteger(v) ? v : undefined;
}
