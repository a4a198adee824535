// Typed errors for bad input to the core. Every method that throws checks its input
// before changing anything, so a caught RaftError leaves the core as it was.

export type RaftErrorCode =
  /** Options or constructor arguments are out of range or inconsistent. */
  | 'invalidConfig'
  /** A message from the network is malformed (bad numbers, wrong recipient, bad entries). */
  | 'invalidMessage'
  /** An input from the driver breaks its contract (e.g. applied beyond what was handed out). */
  | 'invalidInput'
  /** The stored log contradicts what the core knows (e.g. a committed entry would be replaced). */
  | 'invariant';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'RaftError';
    this.code = code;
  }
}

/** Throws a RaftError with `code` unless `cond` holds. */
export function check(cond: boolean, code: RaftErrorCode, message: string): asserts cond {
  if (!cond) throw new RaftError(code, message);
}

/** True for integers 0 ≤ n ≤ 2^53 - 1: every index, term, id and byte count the core accepts. */
export function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
