// The client's one error type. Every failure a CairnClient reports is a CairnClientError
// whose code is one of the public ErrorCode names of proto/cairn/v1/cairn.proto: read from
// the `cairn-error-bin` trailer when the server sent one, otherwise derived from the gRPC
// status (a connection that failed, a deadline that passed) or raised by the client itself
// for input it refuses before sending. The mapping from gRPC lives here and nowhere else.
import { fromBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ErrorDetailSchema } from '../../proto/gen/cairn/v1/cairn_pb.js';

/** The trailing metadata key that carries an ErrorDetail message. */
export const ERROR_DETAIL_KEY = 'cairn-error-bin';

/** The public ErrorCode names of the proto (its generated enum is the one list). */
export type CairnErrorCode = Exclude<keyof typeof ErrorCode, 'ERROR_CODE_UNSPECIFIED'>;

/**
 * The facts an error carries (ErrorDetail in the proto). Offsets are -1 and ids 0 when the
 * server did not fill them in for this code.
 */
export interface ErrorFacts {
  /** NOT_LEADER: the leader's node id (0 if unknown) and API address ('' if unknown). */
  leaderId: number;
  leaderAddress: string;
  /** OFFSET_OUT_OF_RANGE: the valid range is [logStartOffset, highWatermark]. */
  logStartOffset: number;
  highWatermark: number;
  /** EXPECTED_OFFSET_MISMATCH: the partition's actual next offset. */
  actualOffset: number;
  /** DUPLICATE_SEQUENCE: the offsets the original append received (-1: no longer known). */
  baseOffset: number;
  lastOffset: number;
  /** RECORD_TOO_LARGE / LIMIT_EXCEEDED: the limit that was exceeded (0 if not given). */
  limit: number;
}

const noFacts: Readonly<ErrorFacts> = Object.freeze({
  leaderId: 0,
  leaderAddress: '',
  logStartOffset: -1,
  highWatermark: -1,
  actualOffset: -1,
  baseOffset: -1,
  lastOffset: -1,
  limit: 0,
});

export class CairnClientError extends Error {
  override readonly name = 'CairnClientError';
  readonly facts: ErrorFacts;
  constructor(
    readonly code: CairnErrorCode,
    message: string,
    facts: Partial<ErrorFacts> = {},
    /** The gRPC status code of the failed call; undefined for errors the client raised itself. */
    readonly grpcCode: grpc.status | undefined = undefined,
    /**
     * True when a Cairn server answered with this error (its trailer was present): the
     * server looked at the request and refused it. False when the call failed on the way
     * (connection refused or dropped, deadline passed): the request may or may not have
     * been carried out.
     */
    readonly fromServer = false,
  ) {
    super(message);
    this.facts = { ...noFacts, ...facts };
  }
}

const codeNames = new Map<number, CairnErrorCode>(
  Object.entries(ErrorCode)
    .filter(
      (e): e is [CairnErrorCode, ErrorCode] =>
        typeof e[1] === 'number' && e[1] !== ErrorCode.ERROR_CODE_UNSPECIFIED,
    )
    .map(([name, value]) => [value, name]),
);

/** An int64 fact as a number; facts beyond 2^53 cannot occur for offsets (see core-wasm). */
const num = (v: bigint): number => Number(v);

/**
 * The CairnClientError for a failed gRPC call: the ErrorDetail of its trailer when present
 * and well formed, else one derived from the status code alone.
 */
export function errorFromGrpc(err: unknown, address: string): CairnClientError {
  if (err instanceof CairnClientError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code !== 'number') {
    return new CairnClientError('INTERNAL', `${address}: ${e instanceof Error ? e.message : String(err)}`);
  }
  const raw = e.metadata?.get(ERROR_DETAIL_KEY)?.[0];
  if (raw instanceof Uint8Array) {
    try {
      const d = fromBinary(ErrorDetailSchema, raw);
      const code = codeNames.get(d.code);
      if (code !== undefined) {
        return new CairnClientError(
          code,
          d.message,
          {
            leaderId: d.leaderId,
            leaderAddress: d.leaderAddress,
            logStartOffset: num(d.logStartOffset),
            highWatermark: num(d.highWatermark),
            actualOffset: num(d.actualOffset),
            baseOffset: num(d.baseOffset),
            lastOffset: num(d.lastOffset),
            limit: num(d.limit),
          },
          e.code,
          true,
        );
      }
    } catch {
      // A malformed trailer: fall back to the status code below.
    }
  }
  const details = `${address}: ${e.details || e.message || grpc.status[e.code]}`;
  switch (e.code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      return new CairnClientError('UNAVAILABLE', details, {}, e.code);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CairnClientError('TIMEOUT', details, {}, e.code);
    case grpc.status.INVALID_ARGUMENT:
      return new CairnClientError('INVALID_REQUEST', details, {}, e.code);
    case grpc.status.RESOURCE_EXHAUSTED:
      // grpc-js refuses a message over the channel's size limit with this status.
      return new CairnClientError('RECORD_TOO_LARGE', details, {}, e.code);
    case grpc.status.UNIMPLEMENTED:
      return new CairnClientError('INVALID_REQUEST', `${details} (not a Cairn server?)`, {}, e.code);
    default:
      return new CairnClientError('INTERNAL', details, {}, e.code);
  }
}

/** A refusal the client raises itself, before anything is sent. */
export const invalidRequest = (message: string): CairnClientError =>
  new CairnClientError('INVALID_REQUEST', message);
