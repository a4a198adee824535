// An in-process network for node tests: every frame goes through the real frame codec and
// Raft message validator, so what arrives is exactly what a peer over gRPC would deliver.
// Links can be cut to partition nodes; `tamper` rewrites messages in flight (a peer that
// sends bad data).
import type { Core } from '../../../core-wasm/src/index.js';
import type { Message } from '../../../raft/src/index.js';
import { decodeFrame, encodeFrame, type GroupMessages } from '../../src/peer/frame.js';
import { raftMessageValidator } from '../../src/peer/raft-messages.js';
import type { Transport } from '../../src/seams/transport.js';

export class LoopbackNetwork {
  private readonly handlers = new Map<number, (from: number, groups: GroupMessages<Message>[]) => void>();
  /** Cut links, as "a>b" (one direction). */
  private readonly cut = new Set<string>();
  framesDelivered = 0;
  /** Rewrites each message sent from `from` to `to` before it is encoded. */
  tamper: ((from: number, to: number, m: Message) => Message) | undefined;
  private readonly validate;

  constructor(core: Core) {
    this.validate = raftMessageValidator(core);
  }

  transport(nodeId: number): Transport<Message> {
    const net = this;
    return {
      send(to, groups) {
        if (net.cut.has(`${nodeId}>${to}`)) return;
        const tamper = net.tamper;
        if (tamper !== undefined)
          groups = groups.map((g) => ({ ...g, messages: g.messages.map((m) => tamper(nodeId, to, m)) }));
        const bytes = encodeFrame({ kind: 'messages', from: nodeId, clusterId: 'c', groups });
        setImmediate(() => {
          const h = net.handlers.get(to);
          if (h === undefined || net.cut.has(`${nodeId}>${to}`)) return;
          const f = decodeFrame<Message>(bytes, 64 << 20, net.validate);
          if (f.kind !== 'messages') throw new Error('loopback: not a message frame');
          net.framesDelivered++;
          h(f.from, f.groups);
        });
      },
      onReceive(handler) {
        net.handlers.set(nodeId, handler);
      },
      setPeers() {},
      async close() {
        net.handlers.delete(nodeId);
      },
    };
  }

  isolate(nodeId: number, nodes: number[]): void {
    for (const n of nodes) {
      if (n === nodeId) continue;
      this.cut.add(`${nodeId}>${n}`);
      this.cut.add(`${n}>${nodeId}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }
}
