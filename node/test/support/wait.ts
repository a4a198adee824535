// Bounded waiting for tests: every loop that waits on a cluster stops by itself.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns without throwing, for up to `ms`; then throws its last error. */
export async function eventually<T>(fn: () => Promise<T> | T, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} not met within ${ms} ms: ${(last as Error)?.message ?? last}`);
    await sleep(25);
  }
}
