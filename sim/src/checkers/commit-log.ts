// The commit-log anomalies of the Jepsen/Maelstrom "kafka" workload, checked at the end
// of a run over the clients' history and the final logs read from every replica:
//
//   inconsistent-offsets   an offset held two different values (two replicas, a poll and a
//                          replica, or two polls)
//   duplicate              a value at two offsets (no append is applied twice, and an
//                          idempotent producer's retry never makes a copy)
//   lost-write             an acknowledged value missing from the final log while values at
//                          higher offsets of the partition are there (a hole)
//   unseen                 an acknowledged value missing with nothing after it (the tail gone)
//   nonmonotonic-poll      one consumer received offsets that went backwards
//   poll-skip              one consumer's polls passed over a value the log holds
//   failed-write-appeared  an append refused outright is in the log
//   ack-offset             an acknowledged value is in the log at another offset than acknowledged
//   conditional-offset     a conditional append succeeded away from its expected offset
//   lost-update            two conditional appends with the same expected offset both succeeded
//   producer-order         an idempotent producer's batches are out of sequence order in the log
//   stale-read             a linearizable read reported a high watermark below the end of an
//                          append acknowledged before the read was invoked (it did not
//                          observe a write that had completed: not linearizable)
//
// Outcomes follow Jepsen: an unknown append may or may not be in the log; a failed one
// must not be. Retention (records below the log start) and key compaction (a record whose
// key appears again later) excuse a record's absence.
import type { Op, PolledRecord } from '../history.js';
import type { StreamSpec } from '../options.js';

export interface ReplicaLog {
  node: number;
  logStartOffset: number;
  highWatermark: number;
  records: PolledRecord[];
}

export interface FinalPartition {
  stream: string;
  partition: number;
  replicas: ReplicaLog[];
}

export interface Anomaly {
  property: string;
  message: string;
}

/** Stop listing after this many of one kind (the count is still reported). */
const MAX_LISTED = 5;

export function checkCommitLog(
  ops: readonly Op[],
  finals: readonly FinalPartition[],
  streams: readonly StreamSpec[],
): Anomaly[] {
  const out: Anomaly[] = [];
  const counts = new Map<string, number>();
  const report = (property: string, message: string) => {
    const n = (counts.get(property) ?? 0) + 1;
    counts.set(property, n);
    if (n <= MAX_LISTED) out.push({ property, message });
  };
  const spec = new Map(streams.map((s) => [s.name, s]));

  for (const f of finals) {
    const where = `${f.stream}/${f.partition}`;
    const s = spec.get(f.stream);
    const compacted = s?.compacted ?? false;
    // The partition's log: the union of the replicas, which must agree where they overlap.
    const log = new Map<number, PolledRecord>();
    for (const r of f.replicas) {
      for (const rec of r.records) {
        const seen = log.get(rec.offset);
        if (seen === undefined) log.set(rec.offset, rec);
        else if (seen.value !== rec.value)
          report(
            'inconsistent-offsets',
            `${where} offset ${rec.offset}: replicas hold '${short(seen.value)}' and '${short(rec.value)}' (node ${r.node})`,
          );
      }
    }
    const logStart = Math.max(0, ...f.replicas.map((r) => r.logStartOffset));
    const offsets = [...log.keys()].sort((a, b) => a - b);
    const maxOffset = offsets.length === 0 ? -1 : offsets[offsets.length - 1]!;
    const byValue = new Map<string, number[]>();
    const lastOfKey = new Map<string, number>();
    for (const o of offsets) {
      const rec = log.get(o)!;
      const list = byValue.get(rec.value) ?? [];
      list.push(o);
      byValue.set(rec.value, list);
      if (rec.key !== null) lastOfKey.set(rec.key, o);
    }
    for (const [value, at] of byValue) {
      if (at.length > 1 && !value.startsWith('probe.'))
        report('duplicate', `${where}: '${short(value)}' at offsets ${at.join(', ')}`);
    }
    // Polls: agree with the log and with each other; per consumer, monotonic and without skips.
    const polled = new Map<number, string>();
    const mine = ops.filter((o) => o.stream === f.stream && o.partition === f.partition);
    const consumers = new Map<number, Op[]>();
    for (const op of mine) {
      if (op.kind !== 'poll') continue;
      let list = consumers.get(op.client);
      if (list === undefined) consumers.set(op.client, (list = []));
      list.push(op);
      for (const rec of op.records ?? []) {
        const inLog = log.get(rec.offset);
        if (inLog !== undefined && inLog.value !== rec.value)
          report(
            'inconsistent-offsets',
            `${where} offset ${rec.offset}: client ${op.client} polled '${short(rec.value)}' from node ${op.node}, the log holds '${short(inLog.value)}'`,
          );
        const before = polled.get(rec.offset);
        if (before !== undefined && before !== rec.value)
          report(
            'inconsistent-offsets',
            `${where} offset ${rec.offset}: polls returned '${short(before)}' and '${short(rec.value)}'`,
          );
        polled.set(rec.offset, rec.value);
        const at = byValue.get(rec.value);
        if (at === undefined && !compacted && rec.offset >= logStart) {
          // A value read once must still be there: it was committed.
          report(
            'lost-write',
            `${where}: '${short(rec.value)}' was polled at offset ${rec.offset} but is not in the final log`,
          );
        }
      }
    }
    for (const [client, polls] of consumers) {
      let last = -1;
      // Where the consumer's next record should come from: right after the last one it
      // received, across polls (a poll that ends early must not move it past records).
      let cursor = -1;
      for (const op of polls) {
        if (op.outcome !== 'ok') {
          if (op.seek) {
            last = (op.nextOffset ?? 0) - 1;
            cursor = op.nextOffset ?? 0;
          }
          continue;
        }
        if (cursor < 0) cursor = op.from!;
        for (const rec of op.records ?? []) {
          if (rec.offset <= last)
            report(
              'nonmonotonic-poll',
              `${where}: client ${client} got offset ${rec.offset} after ${last} (poll ${op.id} from node ${op.node})`,
            );
          if (!compacted) {
            const k = lowerBound(offsets, Math.max(cursor, logStart));
            const skipped = offsets[k];
            if (skipped !== undefined && skipped < rec.offset)
              report(
                'poll-skip',
                `${where}: client ${client} was at ${cursor} and next got ${rec.offset}, skipping offset ${skipped} (poll ${op.id} from ${op.from} on node ${op.node})`,
              );
          }
          last = Math.max(last, rec.offset);
          cursor = Math.max(cursor, rec.offset + 1);
        }
      }
    }
    // Appends.
    // A value counts as refused only if every attempt to append it was refused (an
    // idempotent batch is sent again after an unknown outcome, with the same values).
    const mayExist = new Set<string>();
    for (const op of mine) if (op.outcome !== 'fail') for (const v of op.values ?? []) mayExist.add(v);
    const conditionalAt = new Map<number, Op>();
    const producerOffsets = new Map<number, { seq: number; offset: number }[]>();
    for (const op of mine) {
      if (
        op.kind !== 'append' &&
        op.kind !== 'idempotent' &&
        op.kind !== 'conditional' &&
        op.kind !== 'probe'
      )
        continue;
      const values = op.values ?? [];
      if (op.outcome === 'fail') {
        for (const v of values) {
          if (byValue.has(v) && !mayExist.has(v))
            report(
              'failed-write-appeared',
              `${where}: '${short(v)}' was refused (${op.error}) yet is at offset ${byValue.get(v)![0]}`,
            );
        }
        continue;
      }
      if (op.outcome !== 'ok') continue;
      if (op.kind === 'conditional') {
        if (op.offset !== op.expectedOffset)
          report(
            'conditional-offset',
            `${where}: an append expecting offset ${op.expectedOffset} succeeded at ${op.offset}`,
          );
        const other = conditionalAt.get(op.expectedOffset!);
        if (other !== undefined)
          report(
            'lost-update',
            `${where}: two appends expecting offset ${op.expectedOffset} both succeeded (ops ${other.id} and ${op.id})`,
          );
        conditionalAt.set(op.expectedOffset!, op);
      }
      values.forEach((v, i) => {
        const at = byValue.get(v);
        const acked = op.offset === undefined ? undefined : op.offset + i;
        if (at === undefined) {
          if (acked !== undefined && acked < logStart) return; // deleted by retention
          if (compacted) {
            const key = op.keys?.[i];
            if (key !== null && key !== undefined && (lastOfKey.get(key) ?? -1) > (acked ?? -1)) return; // compacted away
          }
          if (acked !== undefined && acked < maxOffset)
            report(
              'lost-write',
              `${where}: '${short(v)}' was acknowledged at offset ${acked}, is missing, and the log goes on to ${maxOffset}`,
            );
          else
            report(
              'unseen',
              `${where}: '${short(v)}' was acknowledged${acked === undefined ? '' : ` at offset ${acked}`} and is not in the final log (which ends at ${maxOffset})`,
            );
          return;
        }
        if (acked !== undefined && !at.includes(acked))
          report(
            'ack-offset',
            `${where}: '${short(v)}' was acknowledged at offset ${acked} but is at ${at.join(', ')}`,
          );
        if (op.producer !== undefined && i === 0) {
          let list = producerOffsets.get(op.producer.id);
          if (list === undefined) producerOffsets.set(op.producer.id, (list = []));
          list.push({ seq: op.producer.seq, offset: at[0]! });
        }
      });
    }
    // Linearizable reads: each one's high watermark covers every append acknowledged
    // before it was invoked. Appends by completion time, with the running end offset.
    const acked = mine
      .filter(
        (o) =>
          o.outcome === 'ok' && o.kind !== 'poll' && o.offset !== undefined && (o.values ?? []).length > 0,
      )
      .map((o) => ({ at: o.completeUs, end: o.offset! + o.values!.length, id: o.id }))
      .sort((a, b) => a.at - b.at);
    // reach[k]: the append reaching furthest among the first k + 1 acknowledged.
    const ackedAt = acked.map((a) => a.at);
    const reach: { end: number; id: number }[] = [];
    for (const a of acked) {
      const prev = reach[reach.length - 1];
      reach.push(prev !== undefined && prev.end >= a.end ? prev : a);
    }
    for (const op of mine) {
      if (op.kind !== 'poll' || !op.linearizable || op.outcome !== 'ok' || op.highWatermark === undefined)
        continue;
      // Of the appends acknowledged strictly before the read was invoked.
      const before = reach[lowerBound(ackedAt, op.invokeUs) - 1];
      if (before !== undefined && op.highWatermark < before.end)
        report(
          'stale-read',
          `${where}: a linearizable read by client ${op.client} on node ${op.node} (op ${op.id}) reported high watermark ${op.highWatermark}, but append op ${before.id}, acknowledged before the read began, ends at offset ${before.end}`,
        );
    }
    for (const [pid, list] of producerOffsets) {
      const bySeq = [...new Map(list.map((x) => [x.seq, x])).values()].sort((a, b) => a.seq - b.seq);
      for (let k = 1; k < bySeq.length; k++) {
        if (bySeq[k]!.offset <= bySeq[k - 1]!.offset)
          report(
            'producer-order',
            `${where}: producer ${pid} sequence ${bySeq[k]!.seq} is at offset ${bySeq[k]!.offset}, before sequence ${bySeq[k - 1]!.seq} at ${bySeq[k - 1]!.offset}`,
          );
      }
    }
  }
  for (const [property, n] of counts) {
    if (n > MAX_LISTED) out.push({ property, message: `… ${n - MAX_LISTED} more ${property} anomalies` });
  }
  return out;
}

/** Index of the first element ≥ x in sorted `a` (a.length if none). */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function short(v: string): string {
  return v.length > 24 ? `${v.slice(0, 24)}…` : v;
}
