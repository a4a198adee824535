// The Kafka-protocol listener: plain TCP (node:net), size-prefixed frames, each a request
// header and body (the protocol guide's "Requests and Responses"). Requests on one
// connection are worked on together but answered in the order they came, as Kafka
// requires; a Produce with acks 0 gets no answer. A frame that is too large or does not
// parse, an unknown API or an unsupported version (ApiVersions aside, which answers with
// UNSUPPORTED_VERSION and the versions it has) closes that connection and only that one.
// The socket is made by `accept` so that TLS (the security issue) can wrap it in one place.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../ops/log.js';
import { ApiKey, flexibleRequest, flexibleResponse, SUPPORTED, supports } from './apis.js';
import { KafkaError } from './errors.js';
import { apiVersionsResponse, type HandlerOptions, KafkaHandlers, splitAddress } from './handlers.js';
import { KafkaProtocolError, Reader, Writer } from './protocol.js';

export interface KafkaServerOptions extends HandlerOptions {
  listenAddress: string;
  /** The largest request frame taken (Kafka's socket.request.max.bytes). */
  maxFrameBytes: number;
  log: Logger;
  /** Requests worked on at once per connection; beyond it the connection is not read. */
  maxInFlight?: number;
}

export class KafkaServer {
  private readonly sockets = new Set<Socket>();
  private readonly handlers: KafkaHandlers;

  private constructor(
    private readonly server: Server,
    private readonly o: KafkaServerOptions,
  ) {
    this.handlers = new KafkaHandlers(o);
  }

  static listen(o: KafkaServerOptions): Promise<KafkaServer> {
    const server = createServer();
    const ks = new KafkaServer(server, o);
    server.on('connection', (socket) => ks.accept(socket));
    const { host, port } = splitAddress(o.listenAddress);
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`kafka listener ${o.listenAddress}: ${err.message}`)));
      server.listen(port, host, () => resolve(ks));
    });
  }

  /** The port bound (for a listen address with port 0). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const conn = new Connection(socket, this.handlers, this.o);
    socket.on('data', (chunk) => conn.received(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

class Connection {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** Answers in request order: each request's response (null = none to send) once ready. */
  private readonly pending: Promise<Uint8Array | null>[] = [];
  private writing = false;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly handlers: KafkaHandlers,
    private readonly o: KafkaServerOptions,
  ) {}

  received(chunk: Buffer): void {
    if (this.closed) return;
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    for (;;) {
      if (this.bufferedBytes < 4) return;
      const head = this.peek(4);
      const size = head.readInt32BE(0);
      if (size < 8 || size > this.o.maxFrameBytes) {
        this.close(`a frame of ${size} bytes (the limit is ${this.o.maxFrameBytes})`);
        return;
      }
      if (this.bufferedBytes < 4 + size) return;
      const frame = this.take(4 + size).subarray(4);
      this.request(frame);
      if (this.closed) return;
      if (this.pending.length >= (this.o.maxInFlight ?? 64)) this.socket.pause();
    }
  }

  private peek(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!;
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return out;
  }

  private request(frame: Buffer): void {
    let key: number;
    let version: number;
    let correlationId: number;
    const r = new Reader(frame);
    try {
      key = r.int16();
      version = r.int16();
      correlationId = r.int32();
      r.nullableString(); // client id
      if (key === ApiKey.ApiVersions && !supports(key, version)) {
        // A client that does not know what this broker has asks with its own newest
        // version: the answer is v0, with the error and the versions there are.
        this.queue(
          Promise.resolve(
            respond(correlationId, false, apiVersionsResponse(0, KafkaError.UNSUPPORTED_VERSION)),
          ),
        );
        return;
      }
      if (!supports(key, version)) {
        const range = SUPPORTED.get(key);
        throw new KafkaProtocolError(
          range === undefined
            ? `API key ${key} is not supported`
            : `API ${key} v${version} is not supported (v${range.min}-v${range.max})`,
        );
      }
      if (flexibleRequest(key, version)) r.skipTags();
    } catch (err) {
      this.close((err as Error).message);
      return;
    }
    const flexible = flexibleResponse(key, version);
    const answer = (async () => {
      const body = await this.handlers.handle(key, version, r);
      return body === null ? null : respond(correlationId, flexible, body);
    })();
    this.queue(answer);
  }

  private queue(answer: Promise<Uint8Array | null>): void {
    // A failed answer closes the connection: what it should have said is unknown.
    answer.catch((err) =>
      this.close(err instanceof KafkaProtocolError ? err.message : `internal error: ${err}`),
    );
    this.pending.push(answer);
    void this.flush();
  }

  private async flush(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        let bytes: Uint8Array | null;
        try {
          bytes = await this.pending[0]!;
        } catch {
          return; // closed by queue()'s handler
        }
        this.pending.shift();
        if (bytes !== null && !this.closed) this.socket.write(bytes);
        if (this.pending.length < (this.o.maxInFlight ?? 64)) this.socket.resume();
      }
    } finally {
      this.writing = false;
    }
  }

  private close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.o.log.warn({ remote: this.socket.remoteAddress, why }, 'kafka connection closed');
    this.socket.destroy();
  }
}

/** Size, response header (correlation id, tagged fields when flexible), then the body. */
function respond(correlationId: number, flexible: boolean, body: Writer): Uint8Array {
  const b = body.bytes();
  const head = new Writer(16);
  head.int32(4 + (flexible ? 1 : 0) + b.length).int32(correlationId);
  if (flexible) head.tags();
  const out = new Uint8Array(head.pos + b.length);
  out.set(head.bytes());
  out.set(b, head.pos);
  return out;
}
