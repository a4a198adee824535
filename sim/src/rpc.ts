// Requests from outside the cluster (clients, the operator, the checker) to one node's
// API: the request travels to the node, runs there as an event of that node's process
// (so a paused node answers late and a dead one never), and the answer travels back.
// The caller gives up after its timeout; what the node did then is unknown.
import type { CairnNode } from '../../node/src/cairn-node.js';
import { asCairnError, type CairnError, unavailable } from '../../node/src/errors.js';
import type { SimCluster } from './cluster.js';
import { cancelEvent } from './event-queue.js';
import type { SimNetwork } from './network.js';
import type { SimRandom } from './random.js';
import type { Scheduler } from './scheduler.js';
import { EventKind } from './trace.js';

export type RpcResult<T> =
  | { kind: 'ok'; value: T; node: number }
  /** `reached`: false when the request never got to the node's API (refused, still starting): nothing happened. */
  | { kind: 'error'; error: CairnError; node: number; reached: boolean }
  | { kind: 'timeout'; node: number };

export class Rpc {
  calls = 0;
  timeouts = 0;

  constructor(
    private readonly sched: Scheduler,
    private readonly cluster: SimCluster,
    private readonly net: SimNetwork,
    private readonly rng: SimRandom,
  ) {}

  private latencyUs(): number {
    const p = this.net.profile;
    return p.latencyUs + this.rng.next() * p.jitterUs;
  }

  /** Calls `fn` on node `nodeId`'s API; `caller` tags the events in the trace. */
  call<T>(
    caller: number,
    nodeId: number,
    fn: (n: CairnNode) => Promise<T>,
    timeoutMs: number,
  ): Promise<RpcResult<T>> {
    this.calls++;
    return new Promise<RpcResult<T>>((resolve) => {
      let settled = false;
      const settle = (r: RpcResult<T>) => {
        if (settled) return;
        settled = true;
        cancelEvent(timer);
        if (r.kind === 'timeout') this.timeouts++;
        resolve(r);
      };
      const timer = this.sched.after(
        timeoutMs * 1000,
        () => settle({ kind: 'timeout', node: nodeId }),
        null,
        EventKind.client,
        caller,
      );
      const answer = (r: RpcResult<T>) =>
        this.sched.after(this.latencyUs(), () => settle(r), null, EventKind.response, caller);
      const target = this.cluster.nodes.get(nodeId);
      const inc = target?.inc ?? null;
      if (target === undefined || inc === null) {
        // Nothing listens at the address: the connection is refused at once.
        answer({
          kind: 'error',
          error: unavailable(`node ${nodeId} refused the connection`),
          node: nodeId,
          reached: false,
        });
        return;
      }
      this.sched.after(
        this.latencyUs(),
        () => {
          const node = target.node;
          if (node === null) {
            answer({
              kind: 'error',
              error: unavailable(`node ${nodeId} is starting`),
              node: nodeId,
              reached: false,
            });
            return;
          }
          let p: Promise<T>;
          try {
            p = fn(node);
          } catch (err) {
            p = Promise.reject(err);
          }
          p.then(
            (value) => answer({ kind: 'ok', value, node: nodeId }),
            (err: unknown) =>
              answer({ kind: 'error', error: asCairnError(err), node: nodeId, reached: true }),
          );
        },
        inc,
        EventKind.request,
        caller,
      );
    });
  }
}
