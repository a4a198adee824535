// gRPC calls to one node, with @bufbuild/protobuf's binary codec as the (de)serializer.
// One channel per address, kept for the client's life (grpc-js reconnects it as needed).
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';
import { CairnClientError, errorFromGrpc } from './errors.js';

type MethodsOfKind<S extends GenServiceMethods, Kind extends string> = {
  [K in keyof S as S[K]['methodKind'] extends Kind ? K : never]: S[K];
};

export class Channels {
  private readonly clients = new Map<string, grpc.Client>();
  private closed = false;

  constructor(private readonly maxReceiveMessageBytes: number) {}

  private client(address: string): grpc.Client {
    if (this.closed) throw new CairnClientError('UNAVAILABLE', 'the client is closed');
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': this.maxReceiveMessageBytes,
        // A dead peer is noticed within seconds even on an idle subscription.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // Reconnect quickly after a node restarts (grpc's default backoff starts at 1 s).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** One unary call to `address`; rejects with a CairnClientError. */
  unary<S extends GenServiceMethods, K extends keyof MethodsOfKind<S, 'unary'> & string>(
    address: string,
    service: GenService<S>,
    method: K,
    request: MessageShape<S[K]['input']>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<MessageShape<S[K]['output']>> {
    const m = service.method[method]!;
    return new Promise((resolve, reject) => {
      let c: grpc.Client;
      try {
        c = this.client(address);
      } catch (err) {
        reject(err);
        return;
      }
      const call = c.makeUnaryRequest(
        `/${service.typeName}/${m.name}`,
        (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, msg)),
        (buf: Buffer) => fromBinary(m.output, buf) as MessageShape<S[K]['output']>,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          signal?.removeEventListener('abort', cancel);
          if (err) reject(errorFromGrpc(err, address));
          else resolve(res!);
        },
      );
      // Cancelling makes the callback above fire with CANCELLED.
      const cancel = () => call.cancel();
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /**
   * A server-streaming call. The returned stream is a Node Readable in object mode: it
   * buffers a bounded number of messages and, when its reader stops pulling, HTTP/2 flow
   * control stops the server (whose Subscribe waits for 'drain').
   */
  serverStream<S extends GenServiceMethods, K extends keyof MethodsOfKind<S, 'server_streaming'> & string>(
    address: string,
    service: GenService<S>,
    method: K,
    request: MessageShape<S[K]['input']>,
  ): grpc.ClientReadableStream<MessageShape<S[K]['output']>> {
    const m = service.method[method]!;
    return this.client(address).makeServerStreamRequest(
      `/${service.typeName}/${m.name}`,
      (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, msg)),
      (buf: Buffer) => fromBinary(m.output, buf) as MessageShape<S[K]['output']>,
      request,
      new grpc.Metadata(),
      {},
    );
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
