// `cairn consume STREAM`: prints a stream's records, read through the client library —
// up to the end as it is when the command starts, or (--follow) as they commit.
import type { CairnClient, ConsumedRecord } from '../../../client/src/index.js';
import {
  type CommonValues,
  clientCommand,
  commonUsage,
  connect,
  intFlag,
  Progress,
  printable,
  UsageError,
} from './client-cli.js';

const usage = `usage: cairn consume STREAM [options]
  Prints one record per line (its value; binary values as base64:…), from every partition
  or one, up to the end of the stream as it is now, or with --follow as records commit.
  --partition P        only partition P
  --from POSITION      earliest (default), latest, or an offset
  --count N            stop after N records
  --follow             keep printing new records until --count or Ctrl-C
  --keys               print KEY<TAB>VALUE
  --offsets            print PARTITION<TAB>OFFSET<TAB> before each record
${commonUsage}
  (--json prints one JSON object per record: partition, offset, timestamp, key, value, headers)`;

const options = {
  partition: { type: 'string' },
  from: { type: 'string' },
  count: { type: 'string' },
  follow: { type: 'boolean' },
  keys: { type: 'boolean' },
  offsets: { type: 'boolean' },
} as const;

/** Batch bytes asked for per read when not following. */
const READ_MAX_BYTES = 1 << 20;

function text(b: Uint8Array | null): string {
  const p = printable(b);
  return p.text ?? (p.base64 !== undefined ? `base64:${p.base64}` : '');
}

function format(r: ConsumedRecord, json: boolean, keys: boolean, offsets: boolean): string {
  if (json) {
    const key = printable(r.key);
    const value = printable(r.value);
    return JSON.stringify({
      partition: r.partition,
      offset: r.offset,
      timestamp: r.timestamp,
      key: key.text,
      ...(key.base64 !== undefined ? { keyBase64: key.base64 } : {}),
      value: value.text,
      ...(value.base64 !== undefined ? { valueBase64: value.base64 } : {}),
      headers: r.headers.map((h) => ({ key: h.key, value: printable(h.value).text })),
    });
  }
  let line = text(r.value);
  if (keys) line = `${text(r.key)}\t${line}`;
  if (offsets) line = `${r.partition}\t${r.offset}\t${line}`;
  return line;
}

export const consumeCommand = clientCommand({
  name: 'consume',
  summary: 'print records of a stream (to its end, or --follow)',
  usage,
  options: () => options,
  async run({ values, positionals, json }) {
    if (positionals.length !== 1) throw new UsageError('consume takes one stream name');
    const stream = positionals[0]!;
    const keys = values['keys'] === true;
    const offsets = values['offsets'] === true;
    const follow = values['follow'] === true;
    const count = values['count'] === undefined ? Number.POSITIVE_INFINITY : intFlag(values, 'count', 0);
    const fromFlag = (values['from'] as string | undefined) ?? 'earliest';
    let from: number | 'earliest' | 'latest';
    if (fromFlag === 'earliest' || fromFlag === 'latest') from = fromFlag;
    else from = intFlag(values, 'from', 0);
    const client = connect(values as CommonValues);
    const progress = new Progress('consumed');
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const info = await client.describeStream(stream);
      const partitions =
        values['partition'] === undefined
          ? info.partitions.map((p) => p.partition)
          : [intFlag(values, 'partition', 0)];
      let printed = 0;
      const emit = (r: ConsumedRecord): boolean => {
        if (printed >= count) return false;
        printed++;
        progress.add(1, r.value?.length ?? 0);
        process.stdout.write(`${format(r, json, keys, offsets)}\n`);
        if (printed >= count) stop.abort();
        return printed < count;
      };
      if (count > 0) {
        await Promise.all(
          partitions.map((p) =>
            follow
              ? tail(client, stream, p, from, emit, stop.signal)
              : toEnd(client, stream, p, from, emit, stop.signal),
          ),
        );
      }
      progress.stop();
      if (process.stderr.isTTY || progress.seconds() > 5) console.error(`consumed ${progress.summary()}`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      progress.stop();
      await client.close();
    }
  },
});

/** Reads one partition from `from` up to its end as it is now. */
async function toEnd(
  client: CairnClient,
  stream: string,
  partition: number,
  from: number | 'earliest' | 'latest',
  emit: (r: ConsumedRecord) => boolean,
  signal: AbortSignal,
): Promise<void> {
  const { logStartOffset, highWatermark } = await client.offsets(stream, partition);
  let offset = from === 'earliest' ? logStartOffset : from === 'latest' ? highWatermark : from;
  while (offset < highWatermark && !signal.aborted) {
    // The long poll waits out a replica that has not caught up with the end yet.
    const r = await client.read(stream, partition, { offset, maxBytes: READ_MAX_BYTES, maxWaitMs: 1_000 });
    for (const rec of r.records) {
      if (rec.offset >= highWatermark || !emit(rec)) return;
    }
    if (r.nextOffset <= offset) return;
    offset = r.nextOffset;
  }
}

/** Prints one partition's records as they commit, until `signal` aborts. */
async function tail(
  client: CairnClient,
  stream: string,
  partition: number,
  from: number | 'earliest' | 'latest',
  emit: (r: ConsumedRecord) => boolean,
  signal: AbortSignal,
): Promise<void> {
  for await (const r of client.subscribe(stream, { partition, from, signal })) {
    if (!emit(r)) return;
  }
}
