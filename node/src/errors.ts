// Typed errors. Every refusal the node gives a client is a CairnError with one of the
// codes of the public ErrorCode enum (proto/cairn/v1/cairn.proto) and the facts a client
// needs to act on it. The mapping to gRPC status codes lives in api/grpc-errors.ts, and
// nowhere else.

import type { ErrorCode } from '../../proto/gen/cairn/v1/cairn_pb.js';

/** The public ErrorCode names of the proto (its generated enum is the one list). */
export type ErrorCodeName = Exclude<keyof typeof ErrorCode, 'ERROR_CODE_UNSPECIFIED'>;

/** The facts an error may carry; which ones depends on the code (see ErrorDetail in the proto). */
export interface ErrorFacts {
  /** NOT_LEADER: the leader's node id, 0 when unknown. */
  leaderId?: number;
  /** NOT_LEADER: the leader's API address, '' when unknown. */
  leaderAddress?: string;
  /** OFFSET_OUT_OF_RANGE: the valid range is [logStartOffset, highWatermark]. */
  logStartOffset?: number;
  highWatermark?: number;
  /** EXPECTED_OFFSET_MISMATCH: the partition's actual next offset. */
  actualOffset?: number;
  /** DUPLICATE_SEQUENCE: the offsets the original append received (-1 when no longer known). */
  baseOffset?: number;
  lastOffset?: number;
  /** RECORD_TOO_LARGE / LIMIT_EXCEEDED: the limit that was exceeded. */
  limit?: number;
}

export class CairnError extends Error {
  override readonly name = 'CairnError';
  constructor(
    readonly code: ErrorCodeName,
    message: string,
    readonly facts: ErrorFacts = {},
  ) {
    super(message);
  }
}

export const notLeader = (what: string, leaderId: number, leaderAddress: string): CairnError =>
  new CairnError(
    'NOT_LEADER',
    leaderId !== 0
      ? `not the leader of ${what}; node ${leaderId} is`
      : `not the leader of ${what}; leader unknown`,
    { leaderId, leaderAddress },
  );

export const invalidRequest = (message: string): CairnError => new CairnError('INVALID_REQUEST', message);

export const unavailable = (message: string): CairnError => new CairnError('UNAVAILABLE', message);

export const tooLarge = (what: string, bytes: number, limit: number): CairnError =>
  new CairnError('RECORD_TOO_LARGE', `${what} is ${bytes} bytes; the limit is ${limit}`, { limit });

export const limitExceeded = (what: string, limit: number): CairnError =>
  new CairnError('LIMIT_EXCEEDED', `${what}: the limit is ${limit}`, { limit });

/** Anything thrown that is not a CairnError becomes INTERNAL, keeping its message. */
export function asCairnError(err: unknown): CairnError {
  if (err instanceof CairnError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CairnError('INTERNAL', message);
}
