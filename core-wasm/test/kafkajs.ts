// kafkajs's own record batch v2 encoder and decoder, as an independent implementation to
// cross-check ours. kafkajs has no exports map, so its protocol modules load by path.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface KafkaEncoder {
  buffer: Buffer;
}
type KafkaHeaders = Record<string, Buffer | Buffer[]>;

export interface KafkaRecordInput {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: KafkaHeaders;
}

export interface KafkaBatchInput {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp: number;
  maxTimestamp: number;
  partitionLeaderEpoch?: number;
  lastOffsetDelta: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records: KafkaEncoder[];
}

export interface KafkaDecodedRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null | (Buffer | null)[]>;
}

export interface KafkaDecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  partitionLeaderEpoch: number;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  inTransaction: boolean;
  isControlBatch: boolean;
  records: KafkaDecodedRecord[];
}

interface LongStatic {
  fromValue(v: number | string): unknown;
}

const base = 'kafkajs/src/protocol';
const { RecordBatch } = require(`${base}/recordBatch/v0/index.js`) as {
  RecordBatch(input: KafkaBatchInput): Promise<KafkaEncoder>;
};
const Record = require(`${base}/recordBatch/record/v0/index.js`) as (r: KafkaRecordInput) => KafkaEncoder;
const decodeBatch = require(`${base}/recordBatch/v0/decoder.js`) as (
  d: unknown,
) => Promise<KafkaDecodedBatch>;
const Decoder = require(`${base}/decoder.js`) as new (b: Buffer) => unknown;
const Long = require('kafkajs/src/utils/long.js') as LongStatic;
const compression = require(`${base}/message/compression/index.js`) as {
  Codecs: Record<number, () => unknown>;
};
export const kafkaCrc32c = require(`${base}/recordBatch/crc32C/index.js`) as (b: Buffer) => number;

export const kafka = {
  long: (v: number) => Long.fromValue(v),
  record: Record,
  async encode(input: KafkaBatchInput): Promise<Buffer> {
    return (await RecordBatch(input)).buffer;
  },
  async decode(batch: Uint8Array): Promise<KafkaDecodedBatch> {
    return decodeBatch(new Decoder(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)));
  },
  /** Registers a codec for kafkajs's LZ4 slot (kafkajs ships none). */
  setLz4Codec(codec: { compress(e: KafkaEncoder): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }) {
    compression.Codecs[3] = () => codec;
  },
};
