// The simulated network between nodes. Every frame goes through the real frame codec and
// Raft message validator (what arrives is what a peer over gRPC would deliver, never a
// shared object), then meets the faults of the moment: links cut one way or both (a
// partition), loss, duplication, delay and — unless links are FIFO — reordering. A frame
// belongs to the receiving process that was up when it was sent: if that process dies,
// the frame dies with its connection.
import type { Core } from '../../core-wasm/src/index.js';
import { decodeFrame, encodeFrame, type GroupMessages } from '../../node/src/peer/frame.js';
import { raftMessageValidator } from '../../node/src/peer/raft-messages.js';
import type { Transport } from '../../node/src/seams/transport.js';
import type { Message, NodeId } from '../../raft/src/index.js';
import type { Incarnation } from './incarnation.js';
import type { SimRandom } from './random.js';
import type { Scheduler } from './scheduler.js';
import { EventKind } from './trace.js';

/** The network's behaviour; the fault schedule changes it during a run. */
export interface NetworkProfile {
  /** One-way latency of every frame, µs. */
  latencyUs: number;
  /** Uniform extra latency in [0, jitterUs). */
  jitterUs: number;
  /** Probability a frame is lost. */
  lossP: number;
  /** Probability a frame is delivered twice. */
  dupP: number;
  /** Probability a frame is held up for an extra [0, slowUs) (a congested link). */
  slowP: number;
  slowUs: number;
  /** Whether frames on one link may overtake each other (else FIFO, like one TCP stream). */
  reorder: boolean;
}

/** Frames larger than this are refused on receipt, as the real transport does. */
const MAX_FRAME_BYTES = 64 << 20;

const linkKey = (from: NodeId, to: NodeId) => from * 4096 + to;

interface Endpoint {
  inc: Incarnation;
  handler: ((from: NodeId, groups: GroupMessages<Message>[]) => void) | null;
}

export interface NetworkStats {
  framesSent: number;
  framesDelivered: number;
  framesLost: number;
  framesCut: number;
  framesDuplicated: number;
  messagesSent: number;
}

export class SimNetwork {
  readonly profile: NetworkProfile;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** Links cut, one direction each ("from → to"). */
  private readonly cut = new Set<number>();
  /** FIFO links: when the last frame on each link arrives (µs). */
  private readonly lastArrival = new Map<number, number>();
  private readonly validate;
  readonly stats: NetworkStats = {
    framesSent: 0,
    framesDelivered: 0,
    framesLost: 0,
    framesCut: 0,
    framesDuplicated: 0,
    messagesSent: 0,
  };

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: SimRandom,
    private readonly core: Core,
    profile: NetworkProfile,
    /** Sees every frame a node sends, before any fault touches it (the vote checker). */
    private readonly onSend: (from: NodeId, to: NodeId, groups: GroupMessages<Message>[]) => void,
  ) {
    this.profile = { ...profile };
    this.validate = raftMessageValidator(core);
  }

  /** The Transport of one process. */
  transport(inc: Incarnation): Transport<Message> {
    const ep: Endpoint = { inc, handler: null };
    this.endpoints.set(inc.nodeId, ep);
    return {
      send: (to, groups) => {
        if (inc.alive) this.send(inc.nodeId, to, groups);
      },
      onReceive: (handler) => {
        ep.handler = handler;
      },
      setPeers: () => {},
      close: async () => {
        if (this.endpoints.get(inc.nodeId) === ep) this.endpoints.delete(inc.nodeId);
      },
    };
  }

  // --- faults ---------------------------------------------------------------------------

  /** Cuts the link from → to (one direction). */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  /** Cuts every link between the two sides, both ways. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA)
      for (const b of sideB) {
        this.cut.add(linkKey(a, b));
        this.cut.add(linkKey(b, a));
      }
  }

  restoreLink(from: NodeId, to: NodeId): void {
    this.cut.delete(linkKey(from, to));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  /** Every cut link, as [from, to] pairs (for the report). */
  cutLinks(): [NodeId, NodeId][] {
    return [...this.cut].sort((a, b) => a - b).map((k) => [Math.floor(k / 4096), k % 4096]);
  }

  heal(): void {
    this.cut.clear();
  }

  // --- delivery -------------------------------------------------------------------------

  private send(from: NodeId, to: NodeId, groups: GroupMessages<Message>[]): void {
    this.onSend(from, to, groups);
    const st = this.stats;
    st.framesSent++;
    for (const g of groups) st.messagesSent += g.messages.length;
    const dest = this.endpoints.get(to);
    if (dest === undefined || !dest.inc.alive) {
      st.framesLost++;
      return; // nobody listening: the connection fails
    }
    if (this.cut.has(linkKey(from, to))) {
      st.framesCut++;
      return;
    }
    const p = this.profile;
    if (this.rng.chance(p.lossP)) {
      st.framesLost++;
      return;
    }
    const bytes = encodeFrame({ kind: 'messages', from, clusterId: 'sim', groups });
    const copies = this.rng.chance(p.dupP) ? 2 : 1;
    if (copies === 2) st.framesDuplicated++;
    const fingerprint = this.core.xxhash32(bytes, 0);
    for (let k = 0; k < copies; k++) {
      let delay = p.latencyUs + this.rng.next() * p.jitterUs;
      if (this.rng.chance(p.slowP)) delay += this.rng.next() * p.slowUs;
      let at = this.sched.nowUs + Math.ceil(delay);
      if (!p.reorder) {
        const key = linkKey(from, to);
        at = Math.max(at, this.lastArrival.get(key) ?? 0);
        this.lastArrival.set(key, at);
      }
      this.sched.after(
        at - this.sched.nowUs,
        () => this.deliver(from, to, dest, bytes),
        dest.inc,
        EventKind.deliver,
        fingerprint,
      );
    }
  }

  private deliver(from: NodeId, to: NodeId, dest: Endpoint, bytes: Uint8Array): void {
    // A link cut while the frame was in flight loses it.
    if (this.cut.has(linkKey(from, to)) || dest.handler === null) {
      this.stats.framesCut++;
      return;
    }
    const f = decodeFrame<Message>(bytes, MAX_FRAME_BYTES, this.validate);
    if (f.kind !== 'messages') throw new Error('simulated network: not a message frame');
    this.stats.framesDelivered++;
    dest.handler(f.from, f.groups);
  }
}
