// The shapes of load every system gets, the same for all of them:
//
//   closed loop   `concurrency` callers, each appending one record and waiting for its
//                 acknowledgement before the next (concurrency 1 = pure latency).
//   saturating    as many records as the client library takes: `window` calls in flight,
//                 each handing it `batchRecords` records at once (appendMany).
//   end to end    a subscriber receives what callers append; latency = append call →
//                 record seen by the subscriber (same process, same clock).
//   consume       the log read back from its start.
//
// Each measurement runs `warmupSeconds` unrecorded first (JIT, connections, batch sizes
// settling), then `seconds` recorded. Time-bounded loops stop issuing at the deadline and
// wait for what is in flight; rates are completed records over the time until then.
import { randomFillSync } from 'node:crypto';
import { Latencies, type LatencySummary } from './histogram.js';
import type { LogSystem } from './systems.js';

export interface ShapeResult {
  system: string;
  shape: string;
  payloadBytes: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mbPerSec: number;
  /** Per append call (per record for single appends, per call of batchRecords when saturating). */
  latency: LatencySummary;
  settings: Record<string, number | string>;
}

/** Random bytes (nothing compresses them), shared by every record of a shape. */
export function payload(bytes: number): Uint8Array {
  return randomFillSync(new Uint8Array(bytes));
}

function result(
  sys: LogSystem,
  shape: string,
  payloadBytes: number,
  records: number,
  seconds: number,
  lat: Latencies,
  settings: Record<string, number | string>,
): ShapeResult {
  return {
    system: sys.name,
    shape,
    payloadBytes,
    records,
    seconds,
    recordsPerSec: records / seconds,
    mbPerSec: (records * payloadBytes) / seconds / 1e6,
    latency: lat.summary(),
    settings,
  };
}

/**
 * `workers` closed loops of `op` (each resolves to the records it appended), a warm-up
 * first, then `seconds` measured with every op's latency.
 */
async function timedLoops(
  workers: number,
  o: { seconds: number; warmupSeconds: number },
  op: () => Promise<number>,
): Promise<{ records: number; seconds: number; lat: Latencies }> {
  const run = async (seconds: number, lat: Latencies | undefined) => {
    let records = 0;
    const end = performance.now() + seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const t = performance.now();
        // Await first, then add: `records += await op()` reads `records` before the await,
        // so each of the concurrent workers would overwrite the others' counts.
        const done = await op();
        records += done;
        lat?.record(performance.now() - t);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: workers }, worker));
    return { records, seconds: (performance.now() - t0) / 1000 };
  };
  await run(o.warmupSeconds, undefined);
  const lat = new Latencies();
  return { ...(await run(o.seconds, lat)), lat };
}

export async function closedLoop(
  sys: LogSystem,
  o: { payloadBytes: number; concurrency: number; seconds: number; warmupSeconds: number },
): Promise<ShapeResult> {
  const value = payload(o.payloadBytes);
  const r = await timedLoops(o.concurrency, o, async () => {
    await sys.append(value);
    return 1;
  });
  return result(sys, `concurrency ${o.concurrency}`, o.payloadBytes, r.records, r.seconds, r.lat, {
    concurrency: o.concurrency,
    seconds: o.seconds,
    warmupSeconds: o.warmupSeconds,
  });
}

export async function saturating(
  sys: LogSystem,
  o: { payloadBytes: number; batchRecords: number; window: number; seconds: number; warmupSeconds: number },
): Promise<ShapeResult> {
  const value = payload(o.payloadBytes);
  const values = Array.from({ length: o.batchRecords }, () => value);
  const r = await timedLoops(o.window, o, async () => {
    await sys.appendMany(values);
    return values.length;
  });
  return result(sys, 'saturating', o.payloadBytes, r.records, r.seconds, r.lat, {
    batchRecords: o.batchRecords,
    window: o.window,
    seconds: o.seconds,
    warmupSeconds: o.warmupSeconds,
  });
}

/**
 * Appends at `concurrency` (closed loop) while one subscriber follows the log. Each record
 * carries its send time (performance.now(), float64) in its first 8 bytes, so it needs
 * at least 8 bytes; every record gets its own buffer (a client may encode it later).
 */
export async function endToEnd(
  sys: LogSystem,
  o: { payloadBytes: number; concurrency: number; seconds: number; warmupSeconds: number },
): Promise<ShapeResult> {
  if (o.payloadBytes < 8) throw new Error('end-to-end records need at least 8 bytes');
  const fill = payload(o.payloadBytes);
  let lat: Latencies | undefined;
  let seen = 0;
  const stopSubscriber = await sys.subscribe((v) => {
    seen++;
    const sent = new DataView(v.buffer, v.byteOffset, v.byteLength).getFloat64(0, true);
    lat?.record(performance.now() - sent);
  });
  let sent = 0;
  const run = async (seconds: number) => {
    const end = performance.now() + seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const v = fill.slice();
        new DataView(v.buffer).setFloat64(0, performance.now(), true);
        await sys.append(v);
        sent++;
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  };
  /** Every appended record reaches the subscriber (bounded: 30 s). */
  const drain = async () => {
    const deadline = Date.now() + 30_000;
    while (seen < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (seen < sent) throw new Error(`${sys.name}: subscriber saw ${seen} of ${sent} records in 30 s`);
  };
  try {
    await run(o.warmupSeconds);
    await drain();
    lat = new Latencies();
    const before = seen;
    const t0 = performance.now();
    await run(o.seconds);
    await drain();
    const seconds = (performance.now() - t0) / 1000;
    return result(
      sys,
      `end to end, concurrency ${o.concurrency}`,
      o.payloadBytes,
      seen - before,
      seconds,
      lat,
      {
        concurrency: o.concurrency,
        seconds: o.seconds,
        warmupSeconds: o.warmupSeconds,
      },
    );
  } finally {
    await stopSubscriber();
  }
}

/**
 * Reads the current log back from its start to its end. `payloadBytes` is the size the
 * log's records were written with (its label); MB/s counts the bytes actually read.
 */
export async function consume(sys: LogSystem, payloadBytes: number): Promise<ShapeResult> {
  const t0 = performance.now();
  const r = await sys.consume();
  const seconds = (performance.now() - t0) / 1000;
  return {
    ...result(sys, 'consume', payloadBytes, r.records, seconds, new Latencies(), {}),
    mbPerSec: r.bytes / seconds / 1e6,
  };
}
