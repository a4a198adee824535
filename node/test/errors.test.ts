import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromServiceError, grpcStatusOf, toServiceError } from '../src/api/grpc-errors.js';
import { asCairnError, CairnError, type ErrorCodeName, notLeader } from '../src/errors.js';

/** Turns the server-side status into what a client sees, as grpc-js would. */
function asClientError(err: CairnError): grpc.ServiceError {
  const s = toServiceError(err);
  return Object.assign(new Error(s.details), { code: s.code!, details: s.details!, metadata: s.metadata! });
}

test('every code maps to the gRPC status the proto documents', () => {
  const expected: [ErrorCodeName, grpc.status][] = [
    ['NOT_LEADER', grpc.status.FAILED_PRECONDITION],
    ['STREAM_NOT_FOUND', grpc.status.NOT_FOUND],
    ['OFFSET_OUT_OF_RANGE', grpc.status.OUT_OF_RANGE],
    ['EXPECTED_OFFSET_MISMATCH', grpc.status.ABORTED],
    ['DUPLICATE_SEQUENCE', grpc.status.ALREADY_EXISTS],
    ['OUT_OF_ORDER_SEQUENCE', grpc.status.FAILED_PRECONDITION],
    ['RECORD_TOO_LARGE', grpc.status.INVALID_ARGUMENT],
    ['CORRUPT_BATCH', grpc.status.INVALID_ARGUMENT],
    ['UNAVAILABLE', grpc.status.UNAVAILABLE],
    ['INVALID_REQUEST', grpc.status.INVALID_ARGUMENT],
    ['STREAM_EXISTS', grpc.status.ALREADY_EXISTS],
    ['PRODUCER_FENCED', grpc.status.FAILED_PRECONDITION],
    ['LIMIT_EXCEEDED', grpc.status.RESOURCE_EXHAUSTED],
    ['TIMEOUT', grpc.status.DEADLINE_EXCEEDED],
    ['INTERNAL', grpc.status.INTERNAL],
  ];
  for (const [code, status] of expected) {
    assert.is(grpcStatusOf(code), status, code);
    const back = fromServiceError(asClientError(new CairnError(code, 'why')));
    assert.is(back.code, code);
    assert.is(back.message, 'why');
  }
});

test('facts survive the trailer: leader, offset range, actual offset, originals, limit', () => {
  const nl = fromServiceError(asClientError(notLeader('s/0', 3, '127.0.0.1:7003')));
  assert.is(nl.facts.leaderId, 3);
  assert.is(nl.facts.leaderAddress, '127.0.0.1:7003');
  const r = fromServiceError(
    asClientError(new CairnError('OFFSET_OUT_OF_RANGE', 'x', { logStartOffset: 5, highWatermark: 2 ** 40 })),
  );
  assert.is(r.facts.logStartOffset, 5);
  assert.is(r.facts.highWatermark, 2 ** 40);
  const d = fromServiceError(
    asClientError(new CairnError('DUPLICATE_SEQUENCE', 'x', { baseOffset: 7, lastOffset: 9 })),
  );
  assert.equal([d.facts.baseOffset, d.facts.lastOffset], [7, 9]);
  const m = fromServiceError(
    asClientError(new CairnError('EXPECTED_OFFSET_MISMATCH', 'x', { actualOffset: 12 })),
  );
  assert.is(m.facts.actualOffset, 12);
  const l = fromServiceError(asClientError(new CairnError('RECORD_TOO_LARGE', 'x', { limit: 1024 })));
  assert.is(l.facts.limit, 1024);
});

test('a failure without a trailer, or with a garbled one, maps by status code', () => {
  const plain = Object.assign(new Error('x'), {
    code: grpc.status.UNAVAILABLE,
    details: 'connection refused',
    metadata: new grpc.Metadata(),
  });
  assert.is(fromServiceError(plain).code, 'UNAVAILABLE');
  const md = new grpc.Metadata();
  md.set('cairn-error-bin', Buffer.from([0xff, 0xff, 0xff]));
  const garbled = Object.assign(new Error('x'), {
    code: grpc.status.DEADLINE_EXCEEDED,
    details: 'late',
    metadata: md,
  });
  assert.is(fromServiceError(garbled).code, 'TIMEOUT');
  assert.is(asCairnError(new TypeError('boom')).code, 'INTERNAL');
});

test.run();
