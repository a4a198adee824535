// The one place where Cairn's typed errors meet gRPC: a CairnError becomes a gRPC status
// code plus an ErrorDetail message in the trailing metadata key `cairn-error-bin`, and
// back (for Cairn's own clients: the CLI and the tests).
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, type ErrorDetail, ErrorDetailSchema } from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { CairnError, type ErrorCodeName } from '../errors.js';

export const ERROR_DETAIL_KEY = 'cairn-error-bin';

/** gRPC status for each code, as the proto's ErrorCode comments state them. */
const statusOf: Record<ErrorCodeName, grpc.status> = {
  NOT_LEADER: grpc.status.FAILED_PRECONDITION,
  STREAM_NOT_FOUND: grpc.status.NOT_FOUND,
  OFFSET_OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  EXPECTED_OFFSET_MISMATCH: grpc.status.ABORTED,
  DUPLICATE_SEQUENCE: grpc.status.ALREADY_EXISTS,
  OUT_OF_ORDER_SEQUENCE: grpc.status.FAILED_PRECONDITION,
  RECORD_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  CORRUPT_BATCH: grpc.status.INVALID_ARGUMENT,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INVALID_REQUEST: grpc.status.INVALID_ARGUMENT,
  STREAM_EXISTS: grpc.status.ALREADY_EXISTS,
  PRODUCER_FENCED: grpc.status.FAILED_PRECONDITION,
  LIMIT_EXCEEDED: grpc.status.RESOURCE_EXHAUSTED,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  INTERNAL: grpc.status.INTERNAL,
};

export function grpcStatusOf(code: ErrorCodeName): grpc.status {
  return statusOf[code];
}

/** The ErrorDetail message for an error; offsets default to -1 ("not applicable"). */
export function errorDetailOf(err: CairnError): ErrorDetail {
  const f = err.facts;
  return create(ErrorDetailSchema, {
    code: ErrorCode[err.code],
    message: err.message,
    leaderId: f.leaderId ?? 0,
    leaderAddress: f.leaderAddress ?? '',
    logStartOffset: BigInt(f.logStartOffset ?? -1),
    highWatermark: BigInt(f.highWatermark ?? -1),
    actualOffset: BigInt(f.actualOffset ?? -1),
    baseOffset: BigInt(f.baseOffset ?? -1),
    lastOffset: BigInt(f.lastOffset ?? -1),
    limit: BigInt(f.limit ?? 0),
  });
}

/** What a grpc-js handler passes to its callback (or emits) to fail a call with `err`. */
export function toServiceError(err: CairnError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_DETAIL_KEY, Buffer.from(toBinary(ErrorDetailSchema, errorDetailOf(err))));
  return { code: statusOf[err.code], details: `${err.code}: ${err.message}`, metadata };
}

const codeNames = new Map<number, ErrorCodeName>(
  (Object.keys(statusOf) as ErrorCodeName[]).map((name) => [ErrorCode[name], name]),
);

/**
 * The CairnError a failed call carried, read from its `cairn-error-bin` trailer; a call
 * that failed without one (transport trouble, a deadline) maps by its status code.
 */
export function fromServiceError(err: grpc.ServiceError): CairnError {
  const raw = err.metadata?.get(ERROR_DETAIL_KEY)?.[0];
  if (raw instanceof Uint8Array) {
    try {
      const d = fromBinary(ErrorDetailSchema, raw);
      const code = codeNames.get(d.code);
      if (code !== undefined) {
        return new CairnError(code, d.message, {
          leaderId: d.leaderId,
          leaderAddress: d.leaderAddress,
          logStartOffset: Number(d.logStartOffset),
          highWatermark: Number(d.highWatermark),
          actualOffset: Number(d.actualOffset),
          baseOffset: Number(d.baseOffset),
          lastOffset: Number(d.lastOffset),
          limit: Number(d.limit),
        });
      }
    } catch {
      // A malformed trailer: fall through to the status code.
    }
  }
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
      return new CairnError('UNAVAILABLE', err.details || err.message);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CairnError('TIMEOUT', err.details || err.message);
    case grpc.status.INVALID_ARGUMENT:
      return new CairnError('INVALID_REQUEST', err.details || err.message);
    default:
      return new CairnError('INTERNAL', err.details || err.message);
  }
}
