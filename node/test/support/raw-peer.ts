// A raw client of the peer transport's bidirectional stream: sends whatever bytes a test
// gives it (garbage, oversized or malformed frames) and reports how the server closed it.
import * as grpc from '@grpc/grpc-js';

export function rawPeer(address: string) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest<Buffer, Buffer>(
    '/cairn.peer.v1.Peer/Connect',
    (b) => b,
    (b) => b,
  );
  const closed = new Promise<string>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code]!));
    call.on('end', () => resolve('end'));
  });
  call.on('data', () => {});
  return { client, call, closed };
}
