// What the clients did and saw: one record per operation, with when it was invoked and
// completed (virtual µs) and its outcome. Appends whose outcome is unknown (a timeout, a
// NOT_LEADER after the entry was proposed, a node that died with the request) may or may
// not have happened, and the checkers treat them so (as Jepsen does).

export type OpKind = 'append' | 'idempotent' | 'conditional' | 'poll' | 'admin' | 'probe';
export type Outcome = 'pending' | 'ok' | 'fail' | 'unknown';

export interface PolledRecord {
  offset: number;
  value: string;
  key: string | null;
}

export interface Op {
  id: number;
  /** The client (≥ 1), or 0 for the operator and the checker. */
  client: number;
  kind: OpKind;
  stream: string;
  partition: number;
  /** The node that answered (the last one asked, after redirects). */
  node: number;
  invokeUs: number;
  completeUs: number;
  outcome: Outcome;
  /** Appends: the records' values, unique in the run, and keys (compacted streams). */
  values?: string[];
  keys?: (string | null)[];
  producer?: { id: number; seq: number };
  expectedOffset?: number;
  /** Appends that succeeded: the first record's offset (for a duplicate-sequence answer, the original's). */
  offset?: number;
  /** Polls: the offset asked for, what came back, and where the consumer goes next. */
  from?: number;
  records?: PolledRecord[];
  nextOffset?: number;
  linearizable?: boolean;
  /** Polls that succeeded: the partition's high watermark the answer reported. */
  highWatermark?: number;
  /** Polls: the consumer moved to `nextOffset` because `from` had been deleted (retention). */
  seek?: boolean;
  /** Admin operations: what was done. */
  what?: string;
  error?: string;
}

export class History {
  readonly ops: Op[] = [];

  invoke(op: Omit<Op, 'id' | 'completeUs' | 'outcome' | 'node'> & { node?: number }): Op {
    const full: Op = { ...op, id: this.ops.length, completeUs: -1, outcome: 'pending', node: op.node ?? 0 };
    this.ops.push(full);
    return full;
  }

  pending(): Op[] {
    return this.ops.filter((o) => o.outcome === 'pending');
  }

  counts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const o of this.ops) {
      const k = `${o.kind}:${o.outcome}`;
      c[k] = (c[k] ?? 0) + 1;
    }
    return c;
  }
}
