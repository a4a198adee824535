// Bridges protoc-gen-es service descriptors (proto/gen) to @grpc/grpc-js: a grpc-js
// ServiceDefinition whose (de)serializers are @bufbuild/protobuf's binary codec, and a
// small typed client for unary calls. Used by the API server and by `cairn status`.
import {
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';

function pathOf(service: DescService, method: string): string {
  return `/${service.typeName}/${method}`;
}

/** The grpc-js definition of a generated service; handler keys are the methods' localName. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: pathOf(service, m.name),
      requestStream: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
      responseStream: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      requestSerialize: (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, msg)),
      requestDeserialize: (buf: Buffer) => fromBinary(m.input, buf),
      responseSerialize: (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.output, msg)),
      responseDeserialize: (buf: Buffer) => fromBinary(m.output, buf),
      originalName: m.localName,
    };
  }
  return def;
}

type Unary<S extends GenServiceMethods> = {
  [K in keyof S as S[K]['methodKind'] extends 'unary' ? K : never]: S[K];
};

/**
 * Calls a unary method of a generated service on `client`'s channel. Rejects with the
 * grpc.ServiceError of a failed call (see fromServiceError).
 */
export function callUnary<S extends GenServiceMethods, K extends keyof Unary<S> & string>(
  client: grpc.Client,
  service: GenService<S>,
  method: K,
  request: MessageShape<S[K]['input']>,
  options: grpc.CallOptions = {},
): Promise<MessageShape<S[K]['output']>> {
  const m = service.method[method]!;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      pathOf(service, m.name),
      (msg: MessageShape<S[K]['input']>) => Buffer.from(toBinary(m.input, msg)),
      (buf: Buffer) => fromBinary(m.output, buf) as MessageShape<S[K]['output']>,
      request,
      new grpc.Metadata(),
      options,
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}
