// One Raft entry = one Kafka v2 batch (DESIGN §3).
//
// - `normal` entries: `data` *is* the batch; storage stores those bytes as they are
//   (after stamping baseOffset and the epoch in place).
// - `noop` and `config` entries: a control batch (attributes bit 5) holding one control
//   record whose key is (version i16 = 0, type i16) and whose value is the entry's data.
//   Types 100 and 101 are Cairn's (Kafka uses 0 and 1 for transaction markers).
//
// The batch's partitionLeaderEpoch is the entry's term, so the log knows every entry's
// term from the batches alone. Control batches carry timestamp 0 so that every replica
// encodes the same bytes for the same entry.

import type { Core } from '../../../core-wasm/src/index.js';
import type { Entry, EntryType } from '../../../raft/src/types.js';
import {
  ATTR_CONTROL,
  attributesAt,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  dataView,
  epochAt,
  MAGIC_V2,
  magicAt,
} from './batch-fields.js';
import { StorageError } from './errors.js';

export const CONTROL_TYPE_RAFT_NOOP = 100;
export const CONTROL_TYPE_RAFT_CONFIG = 101;

/** The largest term a batch can carry: partitionLeaderEpoch is an i32. */
export const MAX_TERM = 0x7fffffff;

/**
 * The stored form of an entry (not yet stamped). For `normal` entries this is `entry.data`
 * itself, not a copy: storage stamps it in place, as the contract with the driver says.
 * Throws INVALID_ARGUMENT (and changes nothing) for a malformed entry.
 */
export function toStoredBatch(core: Core, entry: Entry): Uint8Array {
  if (!Number.isSafeInteger(entry.term) || entry.term < 0 || entry.term > MAX_TERM)
    throw new StorageError(
      'INVALID_ARGUMENT',
      `entry ${entry.index}: term ${entry.term} is not in 0..${MAX_TERM}`,
    );
  if (!(entry.data instanceof Uint8Array))
    throw new StorageError('INVALID_ARGUMENT', `entry ${entry.index}: data must be a Uint8Array`);
  switch (entry.type) {
    case 'normal':
      checkNormalBatch(entry);
      return entry.data;
    case 'noop':
    case 'config': {
      const key = new Uint8Array(4);
      dataView(key).setInt16(2, entry.type === 'noop' ? CONTROL_TYPE_RAFT_NOOP : CONTROL_TYPE_RAFT_CONFIG);
      return core.encodeBatch([{ key, value: entry.data, timestamp: 0 }], {
        control: true,
        baseTimestamp: 0,
      });
    }
    default:
      throw new StorageError(
        'INVALID_ARGUMENT',
        `entry ${(entry as Entry).index}: unknown type ${String((entry as Entry).type)}`,
      );
  }
}

/** Structure checks that keep the log walkable; the CRC was checked where the batch entered the node. */
function checkNormalBatch(entry: Entry): void {
  const b = entry.data;
  const bad = (why: string): never => {
    throw new StorageError('INVALID_ARGUMENT', `entry ${entry.index}: not a record batch v2: ${why}`);
  };
  if (b.length < BATCH_HEADER_BYTES) bad(`${b.length} bytes is shorter than a batch header`);
  const dv = dataView(b);
  if (magicAt(dv, 0) !== MAGIC_V2) bad(`magic ${magicAt(dv, 0)}`);
  if (BATCH_LOG_OVERHEAD + dv.getInt32(8) !== b.length)
    bad(`batchLength ${dv.getInt32(8)} does not match ${b.length} bytes`);
  if (dv.getInt32(23) < 0) bad(`lastOffsetDelta ${dv.getInt32(23)} is negative`);
  if ((attributesAt(dv, 0) & ATTR_CONTROL) !== 0) bad('a control batch cannot be a normal entry');
}

/** The entry stored as `batch` (stamped bytes as read back) at Raft index `index`. */
export function fromStoredBatch(core: Core, index: number, batch: Uint8Array): Entry {
  const dv = dataView(batch);
  const term = epochAt(dv, 0);
  if ((attributesAt(dv, 0) & ATTR_CONTROL) === 0) return { index, term, type: 'normal', data: batch };
  const records = core.decodeRecords(batch);
  const record = records[0];
  if (records.length !== 1 || !record?.key || record.key.length !== 4)
    throw new StorageError(
      'CORRUPT',
      `entry ${index}: a control batch must hold one control record with a 4-byte key`,
    );
  const kdv = dataView(record.key);
  const version = kdv.getInt16(0);
  const controlType = kdv.getInt16(2);
  let type: EntryType;
  if (version === 0 && controlType === CONTROL_TYPE_RAFT_NOOP) type = 'noop';
  else if (version === 0 && controlType === CONTROL_TYPE_RAFT_CONFIG) type = 'config';
  else
    throw new StorageError(
      'CORRUPT',
      `entry ${index}: unknown control record version ${version} type ${controlType}`,
    );
  return { index, term, type, data: record.value ?? new Uint8Array(0) };
}
