// What a benchmark needs of a replicated log, whichever system it is: the same shapes of
// load run against Cairn, NATS JetStream and etcd through this interface, each adapter
// using that system's own client library.

export interface LogSystem {
  /** Short name for tables and charts, e.g. "cairn", "nats (sync always)", "etcd". */
  readonly name: string;
  /** What "acknowledged" means for this system, said in the results. */
  readonly durability: string;
  /** A fresh, empty log for the next measurement (a stream, a key prefix). */
  reset(label: string): Promise<void>;
  /** Appends one record; resolves once the system acknowledges it. */
  append(value: Uint8Array): Promise<void>;
  /**
   * Appends many records as this system's client batches them best (one call that the
   * library turns into as few requests as it can); resolves once all are acknowledged.
   */
  appendMany(values: Uint8Array[]): Promise<void>;
  /**
   * Calls `onRecord` for every record appended to the current log from now on, in order.
   * Resolves once the subscription is live; the returned function ends it.
   */
  subscribe(onRecord: (value: Uint8Array) => void): Promise<() => Promise<void>>;
  /** Reads the current log from its start to its end (as of the call); counts records and payload bytes. */
  consume(): Promise<{ records: number; bytes: number }>;
  close(): Promise<void>;
}

/** Durable writes (fsync, or an O_DSYNC write) summed over a system's nodes, and their seconds. */
export interface SyncCount {
  count: number;
  seconds: number;
}

/** The value of an unlabelled series in Prometheus text; 0 when absent. */
export function promValue(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}
