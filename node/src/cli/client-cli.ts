// What the client commands of `cairn` (stream, produce, consume, node, leader) share:
// the common flags, a CairnClient for --server, typed error output, and a progress line
// for long runs (on a TTY only, on stderr, so stdout stays clean for pipes).
import { parseArgs } from 'node:util';
import { CairnClient, CairnClientError, type ClientOptions } from '../../../client/src/index.js';
import type { Command } from './main.js';
import { DEFAULT_SERVER } from './status.js';

export const commonOptions = {
  server: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'timeout-ms': { type: 'string' },
} as const;

export const commonUsage = `common options:
  --server HOST:PORT[,…]  any node(s) of the cluster (default $CAIRN_SERVER, else ${DEFAULT_SERVER}, the first node of \`cairn dev\`)
  --json                  machine-readable output (JSON)
  --timeout-ms MS         how long one operation may retry (default 30000)`;

export interface CommonValues {
  server?: string | undefined;
  json?: boolean | undefined;
  help?: boolean | undefined;
  'timeout-ms'?: string | undefined;
}

/** Thrown for bad command-line input; the command prints its usage and exits 2. */
export class UsageError extends Error {}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** parseArgs with the common flags added; bad flags become a UsageError. */
export function parse<O extends Options>(
  argv: string[],
  options: O,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...commonOptions, ...options },
      allowPositionals: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A non-negative integer flag, or `fallback` when absent. */
export function intFlag(values: Record<string, unknown>, name: string, fallback: number): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${name} must be an integer ≥ 0, not '${String(v)}'`);
  return n;
}

export function connect(values: CommonValues, extra: Partial<ClientOptions> = {}): CairnClient {
  const servers = values.server ?? process.env['CAIRN_SERVER'] ?? DEFAULT_SERVER;
  const timeout = intFlag(values as Record<string, unknown>, 'timeout-ms', 30_000);
  try {
    return new CairnClient({ servers, retryTimeoutMs: Math.max(1, timeout), ...extra });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * Runs a command body with its client: prints usage errors (exit 2) and typed errors
 * (exit 1) the same way for every command, and always closes the client.
 */
export async function runWith(
  name: string,
  usage: string,
  body: () => Promise<number>,
  json = false,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`cairn ${name}: ${err.message}\n${usage}`);
      return 2;
    }
    if (err instanceof CairnClientError) {
      if (json)
        console.log(JSON.stringify({ error: { code: err.code, message: err.message, facts: err.facts } }));
      console.error(`cairn ${name}: ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

export type Values = Record<string, string | boolean | undefined>;

/** What a client command's body gets: its action (for commands that have them) and its flags. */
export interface Invocation {
  action: string | undefined;
  values: Values;
  positionals: string[];
  json: boolean;
}

export interface ClientCommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** The command's actions (`stream create|list|…`), the first argument; omitted when it has none. */
  actions?: readonly string[];
  /** The command's own flags (for an action, when given). */
  options(action: string | undefined): Options;
  run(inv: Invocation): Promise<number>;
}

/**
 * A client command: the action and flags parsed the same way for every command, `--help`
 * (and a missing action: exit 2) print the usage, errors go through `runWith`.
 */
export function clientCommand(spec: ClientCommandSpec): Command {
  return {
    summary: spec.summary,
    async run(argv) {
      let values: Values = {};
      return runWith(
        spec.name,
        spec.usage,
        async () => {
          let action: string | undefined;
          let rest = argv;
          if (spec.actions !== undefined) {
            [action, ...rest] = argv;
            if (action === undefined || action === '--help' || action === '-h') {
              console.log(spec.usage);
              return action === undefined ? 2 : 0;
            }
            if (!spec.actions.includes(action)) throw new UsageError(`unknown action '${action}'`);
          }
          const parsed = parse(rest, spec.options(action));
          values = parsed.values;
          if (values['help']) {
            console.log(spec.usage);
            return 0;
          }
          return spec.run({ action, values, positionals: parsed.positionals, json: values['json'] === true });
        },
        values['json'] === true || argv.includes('--json'),
      );
    },
  };
}

/** Runs `body` with a client for the command's --server flags, and closes it after. */
export async function withClient<T>(
  values: Values,
  body: (client: CairnClient) => Promise<T>,
  extra: Partial<ClientOptions> = {},
): Promise<T> {
  const client = connect(values as CommonValues, extra);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** Bytes as text when they are valid UTF-8, for printing. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
export function printable(b: Uint8Array | null): { text: string | null; base64?: string } {
  if (b === null) return { text: null };
  try {
    return { text: strictUtf8.decode(b) };
  } catch {
    return { text: null, base64: Buffer.from(b).toString('base64') };
  }
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const PROGRESS_INTERVAL_MS = 500;

/** A rate line on stderr, redrawn in place, only when stderr is a terminal. */
export class Progress {
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  records = 0;
  bytes = 0;

  constructor(
    private readonly verb: string,
    private readonly total = 0,
  ) {
    if (process.stderr.isTTY) {
      this.timer = setInterval(() => this.draw(), PROGRESS_INTERVAL_MS);
      this.timer.unref();
    }
  }

  add(records: number, bytes: number): void {
    this.records += records;
    this.bytes += bytes;
  }

  /** "N records, X MB in T s (R records/s, M MB/s)". */
  summary(): string {
    const s = Math.max(1e-3, (Date.now() - this.started) / 1000);
    const mb = this.bytes / 1e6;
    return `${this.records} records, ${mb.toFixed(1)} MB in ${s.toFixed(1)} s (${Math.round(this.records / s)} records/s, ${(mb / s).toFixed(1)} MB/s)`;
  }

  seconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  private draw(): void {
    const of = this.total > 0 ? `/${this.total}` : '';
    process.stderr.write(
      `\r\x1b[K${this.verb} ${this.summary().replace(/^(\d+) records/, `$1${of} records`)}`,
    );
  }

  stop(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      process.stderr.write('\r\x1b[K');
    }
    this.timer = undefined;
  }
}
