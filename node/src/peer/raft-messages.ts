// Structural validation of a Raft message decoded from a peer's frame, before it may reach
// a Raft core (the core checks protocol-level sense itself, e.g. entry terms against the
// message term). Every field the message type has is checked for presence and type; every
// 'normal' entry's data must be one whole, CRC-valid record batch v2 that is not a control
// batch, or a consumer-offset control batch (storage stores it as it is, and a core must
// never accept an entry storage would refuse).
import type { Core } from '../../../core-wasm/src/index.js';
import { CONSUMER_OFFSET_CONTROL_TYPE, controlTypeOf } from '../state/batches.js';
import type { MessageValidator } from './frame.js';

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is number => isCount(v) && v > 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
/** An optional field: absent, or a count. */
const optionalCount = (v: unknown): boolean => v === undefined || isCount(v);
/** An optional token: absent, or a count above 0. */
const optionalToken = (v: unknown): boolean => v === undefined || (isCount(v) && v > 0);
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Control bit of the attributes (low byte at offset 22). */
const CONTROL_BIT = 0x20;

function confProblem(c: unknown): string | null {
  if (!isObject(c) || !Array.isArray(c['voters']) || !Array.isArray(c['learners'])) return 'conf malformed';
  if (!(c['voters'] as unknown[]).every(isId) || !(c['learners'] as unknown[]).every(isId))
    return 'conf ids malformed';
  return null;
}

function metaProblem(m: unknown): string | null {
  if (!isObject(m) || !isCount(m['index']) || !isCount(m['term']) || !isCount(m['size']))
    return 'snapshot meta malformed';
  return confProblem(m['conf']);
}

export function raftMessageValidator(core: Core, maxEntriesPerMessage = 1 << 20): MessageValidator {
  const entryProblem = (e: unknown): string | null => {
    if (!isObject(e) || !isCount(e['index']) || !isCount(e['term']) || !isBytes(e['data']))
      return 'entry malformed';
    const data = e['data'];
    switch (e['type']) {
      case 'noop':
      case 'config':
        return null;
      case 'normal': {
        const scan = core.scanBatches(data);
        if (scan.error !== null || scan.batchCount !== 1 || scan.validBytes !== data.length) {
          return `entry ${e['index']} is not one valid record batch`;
        }
        // The only control batch a normal entry may hold is a consumer-offset commit; Raft's
        // own no-op and configuration entries never travel as normal entries.
        if ((data[22]! & CONTROL_BIT) !== 0 && controlTypeOf(core, data) !== CONSUMER_OFFSET_CONTROL_TYPE) {
          return `entry ${e['index']} is a control batch of a type a normal entry cannot hold`;
        }
        return null;
      }
      default:
        return 'entry type unknown';
    }
  };

  return (m) => {
    if (!isObject(m)) return 'not an object';
    if (!isCount(m['term']) || !isId(m['from']) || !isId(m['to'])) return 'envelope malformed';
    switch (m['type']) {
      case 'append': {
        if (
          !isCount(m['prevIndex']) ||
          !isCount(m['prevTerm']) ||
          !isCount(m['commit']) ||
          !optionalCount(m['repairBound']) ||
          !optionalCount(m['repairToken'])
        )
          return 'append indexes malformed';
        const entries = m['entries'];
        if (!Array.isArray(entries) || entries.length > maxEntriesPerMessage)
          return 'append entries malformed';
        for (const e of entries) {
          const p = entryProblem(e);
          if (p !== null) return p;
        }
        return null;
      }
      case 'appendResponse':
        return isCount(m['index']) &&
          isBool(m['reject']) &&
          isCount(m['hintIndex']) &&
          isCount(m['hintTerm']) &&
          optionalToken(m['repairing'])
          ? null
          : 'appendResponse malformed';
      case 'heartbeat':
        return isCount(m['commit']) &&
          isCount(m['readSeq']) &&
          optionalCount(m['repairBound']) &&
          optionalCount(m['repairToken'])
          ? null
          : 'heartbeat malformed';
      case 'heartbeatResponse':
        return isCount(m['readSeq']) && optionalCount(m['logEnd']) && optionalToken(m['repairing'])
          ? null
          : 'heartbeatResponse malformed';
      case 'vote':
        return isBool(m['pre']) && isCount(m['lastIndex']) && isCount(m['lastTerm']) && isBool(m['transfer'])
          ? null
          : 'vote malformed';
      case 'voteResponse':
        return isBool(m['pre']) && isBool(m['granted']) ? null : 'voteResponse malformed';
      case 'snapshotChunk': {
        const p = metaProblem(m['meta']);
        if (p !== null) return p;
        if (!isCount(m['offset']) || !isCount(m['length']) || !isBool(m['done']) || !isBytes(m['data'])) {
          return 'snapshotChunk malformed';
        }
        return (m['data'] as Uint8Array).length === m['length'] ? null : 'snapshotChunk data length';
      }
      case 'snapshotAck':
        return isCount(m['index']) &&
          isCount(m['snapshotTerm']) &&
          isCount(m['offset']) &&
          isBool(m['rewind'])
          ? null
          : 'snapshotAck malformed';
      case 'timeoutNow':
        return null;
      case 'readIndex':
        return isCount(m['context']) ? null : 'readIndex malformed';
      case 'readIndexResponse':
        return isCount(m['context']) && isCount(m['index']) && isBool(m['reject'])
          ? null
          : 'readIndexResponse malformed';
      default:
        return 'unknown message type';
    }
  };
}
