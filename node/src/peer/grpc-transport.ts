// The real Transport: node-to-node gRPC (@grpc/grpc-js), one bidirectional stream per
// pair of nodes carrying msgpackr frames (peer/frame.ts).
//
//   lower id ──dial──▶ higher id        (one stream per pair; the lower id owns reconnects)
//   hello ─────────────▶
//        ◀───────────── hello            (identifies both ends and the cluster)
//   frames ◀──────────▶ frames
//
// The peer service is internal and defined here by hand with raw-bytes serialization; it
// is not part of the public proto.
//
// Limits: a frame is at most maxPeerFrameBytes (checked on send, and on receive both by
// gRPC and by the decoder); each peer's outgoing queue holds at most maxPeerQueueBytes,
// beyond which the oldest frames are dropped — a slow or absent peer never grows memory,
// and Raft retries what was lost. A peer that sends anything malformed is disconnected and
// logged; the node keeps serving everyone else.
import * as grpc from '@grpc/grpc-js';
import type { Limits } from '../limits.js';
import type { Logger } from '../ops/log.js';
import type { CancelTimer, Clock } from '../seams/clock.js';
import type { Random } from '../seams/random.js';
import type { Transport } from '../seams/transport.js';
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameError,
  type GroupMessages,
  type MessageValidator,
  type NodeId,
} from './frame.js';

const PEER_METHOD = '/cairn.peer.v1.Peer/Connect';

const identity = (b: Buffer): Buffer => b;
const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);

const peerService: grpc.ServiceDefinition = {
  Connect: {
    path: PEER_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export interface GrpcTransportOptions {
  nodeId: NodeId;
  clusterId: string;
  /** host:port to listen on (port 0 picks a free port; see `port`). */
  listenAddress: string;
  limits: Pick<Limits, 'maxPeerFrameBytes' | 'maxPeerQueueBytes'>;
  /** Structural check of each Raft message a peer sends. */
  validate: MessageValidator;
  clock: Clock;
  random: Random;
  log: Logger;
  /** Reconnect backoff bounds (doubling with jitter between them). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** Counters per peer, read by the metrics endpoint and by status. */
export interface PeerStats {
  connected: boolean;
  bytesOut: number;
  bytesIn: number;
  framesOut: number;
  framesIn: number;
  framesDropped: number;
  /** Connections closed because the peer sent something malformed. */
  badFrames: number;
  queueBytes: number;
}

type PeerStream = grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>;

class Peer {
  address: string | undefined;
  readonly queue: Buffer[] = [];
  queueBytes = 0;
  /** The stream once the handshake is complete in both directions; null otherwise. */
  stream: PeerStream | null = null;
  /** The stream still in its handshake (dialer side). */
  pending: grpc.ClientDuplexStream<Buffer, Buffer> | null = null;
  waitingForDrain = false;
  client: grpc.Client | null = null;
  retry: CancelTimer | null = null;
  backoffMs = 0;
  readonly stats: PeerStats = {
    connected: false,
    bytesOut: 0,
    bytesIn: 0,
    framesOut: 0,
    framesIn: 0,
    framesDropped: 0,
    badFrames: 0,
    queueBytes: 0,
  };
  constructor(readonly id: NodeId) {}
}

export class GrpcTransport<M> implements Transport<M> {
  private readonly peers = new Map<NodeId, Peer>();
  private handler: (from: NodeId, groups: GroupMessages<M>[]) => void = () => {};
  private peerChange: (peer: NodeId, connected: boolean) => void = () => {};
  private closed = false;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly grpcOptions: grpc.ChannelOptions;

  private constructor(
    private readonly opts: GrpcTransportOptions,
    private readonly server: grpc.Server,
    /** The port actually bound (useful when listening on port 0). */
    readonly port: number,
  ) {
    this.minBackoffMs = opts.reconnectMinMs ?? 50;
    this.maxBackoffMs = opts.reconnectMaxMs ?? 2_000;
    this.grpcOptions = channelOptions(opts.limits.maxPeerFrameBytes);
  }

  /** Starts listening; resolves once the port is bound. */
  static listen<M>(opts: GrpcTransportOptions): Promise<GrpcTransport<M>> {
    const server = new grpc.Server(channelOptions(opts.limits.maxPeerFrameBytes));
    let transport: GrpcTransport<M> | undefined;
    server.addService(peerService, {
      Connect: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        if (transport === undefined || transport.closed) {
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'node is not serving' });
          return;
        }
        transport.accept(call);
      },
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(opts.listenAddress, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err)
          return reject(new Error(`peer transport cannot listen on ${opts.listenAddress}: ${err.message}`));
        transport = new GrpcTransport<M>(opts, server, port);
        resolve(transport);
      });
    });
  }

  onReceive(handler: (from: NodeId, groups: GroupMessages<M>[]) => void): void {
    this.handler = handler;
  }

  onPeerChange(handler: (peer: NodeId, connected: boolean) => void): void {
    this.peerChange = handler;
  }

  setPeers(addresses: ReadonlyMap<NodeId, string>): void {
    if (this.closed) return;
    for (const [id, address] of addresses) {
      if (id === this.opts.nodeId) continue;
      const peer = this.peer(id);
      if (peer.address === address) continue;
      peer.address = address;
      if (this.dialsTo(id)) {
        // A new or moved peer: (re)dial at once.
        this.disconnect(peer, 'address changed');
        this.dial(peer);
      }
    }
    for (const [id, peer] of this.peers) {
      if (!addresses.has(id)) this.forget(peer);
    }
  }

  send(to: NodeId, groups: GroupMessages<M>[]): void {
    if (this.closed || to === this.opts.nodeId || groups.length === 0) return;
    const bytes = asBuffer(
      encodeFrame<M>({ kind: 'messages', from: this.opts.nodeId, clusterId: this.opts.clusterId, groups }),
    );
    const peer = this.peer(to);
    if (bytes.length > this.opts.limits.maxPeerFrameBytes) {
      // The driver's flow control keeps frames below the limit; this is a bug, not a peer's fault.
      peer.stats.framesDropped++;
      this.opts.log.error(
        { peer: to, bytes: bytes.length },
        'outgoing frame exceeds maxPeerFrameBytes; dropped',
      );
      return;
    }
    peer.queue.push(bytes);
    peer.queueBytes += bytes.length;
    // Bounded queue: drop the oldest frames first; newer ones carry newer Raft state.
    while (peer.queueBytes > this.opts.limits.maxPeerQueueBytes && peer.queue.length > 1) {
      const dropped = peer.queue.shift()!;
      peer.queueBytes -= dropped.length;
      peer.stats.framesDropped++;
    }
    peer.stats.queueBytes = peer.queueBytes;
    this.flush(peer);
  }

  /** Per-peer counters (a copy). */
  stats(): Map<NodeId, PeerStats> {
    const out = new Map<NodeId, PeerStats>();
    for (const [id, p] of this.peers) out.set(id, { ...p.stats, connected: p.stream !== null });
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) this.forget(peer);
    await new Promise<void>((resolve) => {
      const force = this.opts.clock.setTimer(1_000, () => {
        this.server.forceShutdown();
        resolve();
      });
      this.server.tryShutdown(() => {
        force();
        resolve();
      });
    });
  }

  private dialsTo(id: NodeId): boolean {
    return this.opts.nodeId < id;
  }

  private peer(id: NodeId): Peer {
    let p = this.peers.get(id);
    if (p === undefined) {
      p = new Peer(id);
      this.peers.set(id, p);
    }
    return p;
  }

  private forget(peer: Peer): void {
    this.disconnect(peer, 'peer removed');
    peer.retry?.();
    peer.retry = null;
    peer.client?.close();
    peer.client = null;
    peer.queue.length = 0;
    peer.queueBytes = 0;
    this.peers.delete(peer.id);
  }

  // --- dialer side -------------------------------------------------------------------

  private dial(peer: Peer): void {
    peer.retry?.();
    peer.retry = null;
    if (this.closed || peer.address === undefined || peer.stream !== null || peer.pending !== null) return;
    if (peer.client === null) {
      peer.client = new grpc.Client(peer.address, grpc.credentials.createInsecure(), this.grpcOptions);
    }
    const call = peer.client.makeBidiStreamRequest<Buffer, Buffer>(PEER_METHOD, identity, identity);
    peer.pending = call;
    let greeted = false;
    call.on('data', (data: Buffer) => {
      if (peer.pending !== call && peer.stream !== call) return;
      if (!greeted) {
        const hello = this.decode(peer, data);
        if (hello === null) return this.drop(peer, call, 'bad handshake');
        if (hello.kind !== 'hello' || hello.from !== peer.id || hello.to !== this.opts.nodeId) {
          return this.drop(peer, call, `handshake from the wrong node or cluster: ${describe(hello)}`);
        }
        greeted = true;
        peer.pending = null;
        peer.backoffMs = 0;
        this.attach(peer, call);
        return;
      }
      this.receive(peer, call, data);
    });
    const ended = (why: string) => {
      if (peer.pending === call) peer.pending = null;
      if (peer.stream === call) this.detach(peer, why);
      this.scheduleDial(peer);
    };
    call.on('error', (err: grpc.ServiceError) => ended(err.details || err.message));
    call.on('end', () => ended('stream ended'));
    call.write(
      asBuffer(
        encodeFrame({ kind: 'hello', from: this.opts.nodeId, clusterId: this.opts.clusterId, to: peer.id }),
      ),
    );
  }

  private scheduleDial(peer: Peer): void {
    if (this.closed || peer.retry !== null || !this.peers.has(peer.id) || !this.dialsTo(peer.id)) return;
    peer.backoffMs =
      peer.backoffMs === 0 ? this.minBackoffMs : Math.min(this.maxBackoffMs, peer.backoffMs * 2);
    // ±25% jitter so that a restarted node is not dialled by everyone in the same instant.
    const delay = peer.backoffMs * (0.75 + 0.5 * this.opts.random.next());
    peer.retry = this.opts.clock.setTimer(delay, () => {
      peer.retry = null;
      this.dial(peer);
    });
  }

  // --- listener side -----------------------------------------------------------------

  private accept(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    let peer: Peer | null = null;
    call.on('data', (data: Buffer) => {
      if (peer === null) {
        const hello = this.decodeUnattributed(data, call);
        if (hello === null) return;
        if (
          hello.kind !== 'hello' ||
          hello.to !== this.opts.nodeId ||
          this.dialsTo(hello.from) ||
          hello.from === this.opts.nodeId
        ) {
          this.opts.log.warn({ frame: describe(hello) }, 'peer handshake refused');
          call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'bad handshake' });
          return;
        }
        peer = this.peer(hello.from);
        call.write(
          asBuffer(
            encodeFrame({
              kind: 'hello',
              from: this.opts.nodeId,
              clusterId: this.opts.clusterId,
              to: peer.id,
            }),
          ),
        );
        // A new connection from the same peer replaces the old one (it reconnected).
        this.disconnect(peer, 'replaced by a new connection');
        this.attach(peer, call);
        return;
      }
      this.receive(peer, call, data);
    });
    const ended = (why: string) => {
      if (peer !== null && peer.stream === call) this.detach(peer, why);
    };
    call.on('error', (err: Error) => ended(err.message));
    call.on('end', () => {
      ended('stream ended');
      call.end();
    });
    call.on('cancelled', () => ended('cancelled'));
  }

  // --- both sides --------------------------------------------------------------------

  private attach(peer: Peer, stream: PeerStream): void {
    peer.stream = stream;
    peer.stats.connected = true;
    peer.waitingForDrain = false;
    stream.on('drain', () => {
      if (peer.stream !== stream) return;
      peer.waitingForDrain = false;
      this.flush(peer);
    });
    this.opts.log.info({ peer: peer.id }, 'peer connected');
    this.flush(peer);
    this.peerChange(peer.id, true);
  }

  private detach(peer: Peer, why: string): void {
    peer.stream = null;
    peer.stats.connected = false;
    peer.waitingForDrain = false;
    this.opts.log.info({ peer: peer.id, why }, 'peer disconnected');
    this.peerChange(peer.id, false);
  }

  /** Closes the peer's current stream, if any. */
  private disconnect(peer: Peer, why: string): void {
    const s = peer.stream ?? peer.pending;
    peer.pending = null;
    if (s === null) return;
    if (peer.stream !== null) this.detach(peer, why);
    closeStream(s, why);
  }

  /** Closes a stream because the peer misbehaved. */
  private drop(peer: Peer, stream: PeerStream, why: string): void {
    peer.stats.badFrames++;
    this.opts.log.warn({ peer: peer.id, why }, 'peer sent a malformed frame; disconnected');
    if (peer.pending === stream) peer.pending = null;
    if (peer.stream === stream) this.detach(peer, why);
    closeStream(stream, why);
    this.scheduleDial(peer);
  }

  private flush(peer: Peer): void {
    const s = peer.stream;
    if (s === null || peer.waitingForDrain) return;
    while (peer.queue.length > 0) {
      const frame = peer.queue.shift()!;
      peer.queueBytes -= frame.length;
      peer.stats.bytesOut += frame.length;
      peer.stats.framesOut++;
      if (!s.write(frame)) {
        peer.waitingForDrain = true;
        break;
      }
    }
    peer.stats.queueBytes = peer.queueBytes;
  }

  private receive(peer: Peer, stream: PeerStream, data: Buffer): void {
    if (peer.stream !== stream) return;
    peer.stats.bytesIn += data.length;
    peer.stats.framesIn++;
    const frame = this.decode(peer, data);
    if (frame === null) {
      this.drop(peer, stream, 'undecodable or malformed frame');
      return;
    }
    if (frame.kind !== 'messages' || frame.from !== peer.id) {
      this.drop(peer, stream, `unexpected frame ${describe(frame)}`);
      return;
    }
    try {
      this.handler(peer.id, frame.groups);
    } catch (err) {
      // The node's handler must not throw; if it does, that is our bug, not the peer's.
      this.opts.log.error({ peer: peer.id, err }, 'handling a peer frame failed');
    }
  }

  private decode(peer: Peer, data: Buffer): Frame<M> | null {
    try {
      const f = decodeFrame<M>(data, this.opts.limits.maxPeerFrameBytes, this.opts.validate);
      if (f.clusterId !== this.opts.clusterId) throw new FrameError(`frame from cluster '${f.clusterId}'`);
      return f;
    } catch (err) {
      this.opts.log.warn({ peer: peer.id, err: (err as Error).message }, 'bad frame from peer');
      return null;
    }
  }

  private decodeUnattributed(data: Buffer, call: grpc.ServerDuplexStream<Buffer, Buffer>): Frame<M> | null {
    try {
      const f = decodeFrame<M>(data, this.opts.limits.maxPeerFrameBytes, this.opts.validate);
      if (f.clusterId !== this.opts.clusterId) throw new FrameError(`hello from cluster '${f.clusterId}'`);
      return f;
    } catch (err) {
      this.opts.log.warn(
        { remote: call.getPeer(), err: (err as Error).message },
        'bad handshake from a peer',
      );
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'bad handshake' });
      return null;
    }
  }
}

function closeStream(s: PeerStream, why: string): void {
  if ('cancel' in s) {
    s.cancel();
  } else {
    s.emit('error', { code: grpc.status.ABORTED, details: why });
  }
}

function describe(f: Frame<unknown>): string {
  return f.kind === 'hello' ? `hello from ${f.from} to ${f.to}` : `messages from ${f.from}`;
}

function channelOptions(maxFrameBytes: number): grpc.ChannelOptions {
  return {
    // gRPC enforces the frame limit before we decode; a bit of slack for its own framing.
    'grpc.max_receive_message_length': maxFrameBytes + 1024,
    'grpc.max_send_message_length': maxFrameBytes + 1024,
    // Notice a dead peer behind a silent network within seconds.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // Our own backoff decides reconnects.
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': 2_000,
  };
}
