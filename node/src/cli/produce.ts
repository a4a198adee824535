// `cairn produce STREAM`: appends records through the client library's batching,
// idempotent producer — one record per input line (stdin or a file), or synthetic records
// for load (--count/--size) — and prints where each landed, or a rate summary.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ProduceRecord, RecordPosition } from '../../../client/src/index.js';
import {
  type CommonValues,
  clientCommand,
  commonUsage,
  connect,
  intFlag,
  Progress,
  UsageError,
} from './client-cli.js';

const usage = `usage: cairn produce STREAM [options]
  Appends one record per line of stdin (or of --file), and prints "PARTITION OFFSET" for
  each, in input order; or, with --count, N synthetic records, and prints a summary.
  --file PATH            read lines from PATH instead of stdin
  --key KEY              the key of every record (chooses the partition)
  --key-separator SEP    split each line at the first SEP into key and value
  --partition P          append to partition P (default: by key, else round-robin)
  --count N              append N synthetic records instead of reading lines
  --size BYTES           value size of synthetic records (default 100)
  --compression C        none, lz4 or gzip (default none)
  --linger-ms MS         how long an append waits for others to share its batch (default 0)
  --quiet                print only the summary (on stderr)
${commonUsage}`;

const options = {
  file: { type: 'string' },
  key: { type: 'string' },
  'key-separator': { type: 'string' },
  partition: { type: 'string' },
  count: { type: 'string' },
  size: { type: 'string' },
  compression: { type: 'string' },
  'linger-ms': { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

/** Appends in flight at most; the oldest is awaited first (so output keeps input order). */
const MAX_OUTSTANDING_APPENDS = 20_000;

interface Pending {
  done: Promise<RecordPosition>;
  bytes: number;
}

export const produceCommand = clientCommand({
  name: 'produce',
  summary: 'append records (lines of stdin or a file, or synthetic load)',
  usage,
  options: () => options,
  async run({ values, positionals, json }) {
    if (positionals.length !== 1) throw new UsageError('produce takes one stream name');
    const stream = positionals[0]!;
    const quiet = values['quiet'] === true;
    const count = values['count'] === undefined ? undefined : intFlag(values, 'count', 0);
    const size = intFlag(values, 'size', 100);
    const partition = values['partition'] === undefined ? undefined : intFlag(values, 'partition', 0);
    const key = values['key'] as string | undefined;
    const separator = values['key-separator'] as string | undefined;
    if (separator === '') throw new UsageError('--key-separator must not be empty');
    if (key !== undefined && separator !== undefined)
      throw new UsageError('give --key or --key-separator, not both');
    if (count !== undefined && values['file'] !== undefined)
      throw new UsageError('give --count or --file, not both');
    const compression = (values['compression'] as string | undefined) ?? 'none';
    if (!['none', 'lz4', 'gzip'].includes(compression))
      throw new UsageError(`--compression must be none, lz4 or gzip`);
    const client = connect(values as CommonValues, {
      compression: compression as 'none' | 'lz4' | 'gzip',
      lingerMs: intFlag(values, 'linger-ms', 0),
    });
    const progress = new Progress('produced', count ?? 0);
    try {
      const outstanding: Pending[] = [];
      let first: RecordPosition | undefined;
      let last: RecordPosition | undefined;
      const settleOldest = async () => {
        const p = outstanding.shift()!;
        const pos = await p.done;
        first ??= pos;
        last = pos;
        progress.add(1, p.bytes);
        if (count === undefined && !quiet)
          console.log(json ? JSON.stringify(pos) : `${pos.partition} ${pos.offset}`);
      };
      const send = async (record: ProduceRecord, bytes: number) => {
        if (outstanding.length >= MAX_OUTSTANDING_APPENDS) await settleOldest();
        const done = client.append(stream, record, partition === undefined ? {} : { partition });
        // Failures surface in order through settleOldest; do not report them twice.
        done.catch(() => {});
        outstanding.push({ done, bytes });
      };
      if (count !== undefined) await synthetic(count, size, key, send);
      else await lines(values['file'] as string | undefined, key, separator, send);
      while (outstanding.length > 0) await settleOldest();
      progress.stop();
      const seconds = progress.seconds();
      if (count !== undefined || quiet) {
        const summary = {
          records: progress.records,
          bytes: progress.bytes,
          seconds,
          recordsPerSecond: progress.records / Math.max(seconds, 1e-3),
          first,
          last,
        };
        if (json && count !== undefined) console.log(JSON.stringify(summary));
        const range =
          first && last
            ? `; offsets from ${first.partition}:${first.offset} to ${last.partition}:${last.offset}`
            : '';
        console.error(`produced ${progress.summary()}${range}`);
      }
      return 0;
    } finally {
      progress.stop();
      await client.close();
    }
  },
});

async function synthetic(
  count: number,
  size: number,
  key: string | undefined,
  send: (r: ProduceRecord, bytes: number) => Promise<void>,
): Promise<void> {
  // Printable filler with the record's number in front, so values differ and compress a little.
  const filler = Buffer.alloc(size, 'cairn-load-0123456789abcdefghijklmnopqrstuvwxyz-');
  for (let i = 0; i < count; i++) {
    const value = Buffer.from(filler);
    value.write(`${String(i).padStart(10, '0')} `, 0, Math.min(size, 11), 'ascii');
    await send({ key: key ?? null, value }, size);
  }
}

async function lines(
  file: string | undefined,
  key: string | undefined,
  separator: string | undefined,
  send: (r: ProduceRecord, bytes: number) => Promise<void>,
): Promise<void> {
  const input = file === undefined ? process.stdin : createReadStream(file);
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) {
    let k: string | null = key ?? null;
    let value = line;
    if (separator !== undefined) {
      const at = line.indexOf(separator);
      if (at >= 0) {
        k = line.slice(0, at);
        value = line.slice(at + separator.length);
      }
    }
    await send({ key: k, value }, Buffer.byteLength(line));
  }
}
