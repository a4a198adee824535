// Kafka's error codes (the protocol guide's table) for the CairnErrors a request can meet.
// Kafka clients retry by code — NOT_LEADER_OR_FOLLOWER refreshes metadata and retries,
// REQUEST_TIMED_OUT retries (an idempotent producer's retry is deduplicated by Cairn's own
// producer state) — so a code says what a Kafka client should do, as the Cairn one does.
import { asCairnError, type CairnError } from '../errors.js';

export const KafkaError = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  INVALID_REQUIRED_ACKS: 21,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  UNKNOWN_SERVER_ERROR: -1,
} as const;

/** The Kafka code for what a Cairn operation threw. */
export function kafkaCode(err: unknown): number {
  const e: CairnError = asCairnError(err);
  switch (e.code) {
    case 'NOT_LEADER':
      return KafkaError.NOT_LEADER_OR_FOLLOWER;
    case 'STREAM_NOT_FOUND':
      return KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
    case 'OFFSET_OUT_OF_RANGE':
      return KafkaError.OFFSET_OUT_OF_RANGE;
    case 'DUPLICATE_SEQUENCE':
      return KafkaError.DUPLICATE_SEQUENCE_NUMBER;
    case 'OUT_OF_ORDER_SEQUENCE':
      return KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER;
    case 'PRODUCER_FENCED':
      return KafkaError.INVALID_PRODUCER_EPOCH;
    case 'RECORD_TOO_LARGE':
      return KafkaError.MESSAGE_TOO_LARGE;
    case 'CORRUPT_BATCH':
      return KafkaError.CORRUPT_MESSAGE;
    case 'UNAVAILABLE':
      return KafkaError.LEADER_NOT_AVAILABLE;
    case 'TIMEOUT':
      return KafkaError.REQUEST_TIMED_OUT;
    case 'INVALID_REQUEST':
      return KafkaError.INVALID_REQUEST;
    case 'STREAM_EXISTS':
      return KafkaError.TOPIC_ALREADY_EXISTS;
    case 'LIMIT_EXCEEDED':
      return KafkaError.POLICY_VIOLATION;
    case 'EXPECTED_OFFSET_MISMATCH':
      return KafkaError.INVALID_REQUEST;
    default:
      return KafkaError.UNKNOWN_SERVER_ERROR;
  }
}
