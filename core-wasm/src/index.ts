// The public surface of core-wasm: the contract (api.ts), the in-thread core and the pool.
export * from './api.js';
export { type CreateCoreOptions, createCore } from './core.js';
export { type CoreLimits, coreLimits } from './limits.js';
export { type CorePoolOptions, createCorePool, POOL_THRESHOLD_BYTES } from './pool.js';
