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
