// The Transport seam (DESIGN §1): how a node's Raft groups reach other nodes. The real
// one is peer/grpc-transport.ts; the simulator supplies its own network. Delivery is
// best-effort: a message may be dropped, delayed or duplicated, and Raft copes.
import type { GroupMessages, NodeId } from '../peer/frame.js';

export interface Transport<M> {
  /**
   * Sends the messages of one turn to one peer, as one frame. Never blocks and never
   * throws: when the peer is unknown, unreachable or its queue is full, messages are
   * dropped (Raft retries).
   */
  send(to: NodeId, groups: GroupMessages<M>[]): void;
  /** Where received frames go; `from` is the peer's authenticated (handshake) id. */
  onReceive(handler: (from: NodeId, groups: GroupMessages<M>[]) => void): void;
  /**
   * Where connection changes go: a peer (re)connected or was lost. A reconnect often means
   * the peer restarted, perhaps with less of its log than it had acknowledged (a wiped or
   * repaired disk); the runtime tells its Raft leaders to probe it again.
   */
  onPeerChange?(handler: (peer: NodeId, connected: boolean) => void): void;
  /** The peers' addresses as the node now knows them (added, changed or gone). */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Stops connecting and closes every connection. */
  close(): Promise<void>;
}
