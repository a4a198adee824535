// The public surface of Cairn's TypeScript client.
export { CairnClient } from './client.js';
export { CairnClientError, type CairnErrorCode, type ErrorFacts } from './errors.js';
export type { Materialized, MaterializeOptions, Reducer } from './materialize.js';
export { type ClientOptions, defaultClientOptions } from './options.js';
export { FileSnapshotStore, MemorySnapshotStore, type SnapshotStore } from './snapshot-store.js';
export type * from './types.js';
