// The Kafka APIs this listener answers, with the version range of each (what ApiVersions
// advertises; a client uses the highest version both sides have). Only non-flexible
// versions so far, except ApiVersions v3 (librdkafka's first request): every client here —
// librdkafka 2.0, kafkajs 2.2, the Java client — falls back to them. A request of another
// version closes the connection, as a Kafka broker does.
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
} as const;

export interface VersionRange {
  min: number;
  max: number;
  /** First flexible version (compact strings and arrays, tagged fields). */
  flexibleFrom: number;
}

export const SUPPORTED: ReadonlyMap<number, VersionRange> = new Map([
  // Produce v3: record batch v2 only (what Cairn stores).
  [ApiKey.Produce, { min: 3, max: 8, flexibleFrom: 9 }],
  [ApiKey.Fetch, { min: 4, max: 11, flexibleFrom: 12 }],
  [ApiKey.ListOffsets, { min: 1, max: 5, flexibleFrom: 6 }],
  [ApiKey.Metadata, { min: 0, max: 8, flexibleFrom: 9 }],
  [ApiKey.ApiVersions, { min: 0, max: 3, flexibleFrom: 3 }],
  [ApiKey.CreateTopics, { min: 0, max: 4, flexibleFrom: 5 }],
  [ApiKey.DeleteTopics, { min: 0, max: 3, flexibleFrom: 4 }],
  [ApiKey.InitProducerId, { min: 0, max: 1, flexibleFrom: 2 }],
]);

export function supports(key: number, version: number): boolean {
  const r = SUPPORTED.get(key);
  return r !== undefined && version >= r.min && version <= r.max;
}

/** Whether a request of this key and version uses request header v2 (flexible). */
export function flexibleRequest(key: number, version: number): boolean {
  const r = SUPPORTED.get(key);
  return r !== undefined && version >= r.flexibleFrom;
}

/**
 * Whether the response header carries tagged fields: flexible versions do, except
 * ApiVersions, whose response header is always v0 (a client that does not know the
 * broker's versions yet must be able to read it).
 */
export function flexibleResponse(key: number, version: number): boolean {
  return key !== ApiKey.ApiVersions && flexibleRequest(key, version);
}
