// A replicated key-value service. Every instance keeps the whole map in memory, folded
// from one Cairn stream (client.materialize); a write is an append to that stream, so all
// instances apply the same writes in the same order and hold the same map. A crashed
// instance comes back from its last snapshot plus the records after it.
//
//   node dist/examples/kv-service.js [--port 8080] [--server 127.0.0.1:7001]
//                                    [--stream kv] [--snapshots DIR] [--snapshot-every N]
//
//   PUT    /kv/KEY   body = value   → {"offset": N} once this instance reflects the write
//   GET    /kv/KEY                  → the value (404 if absent), as this instance knows it
//   GET    /kv/KEY?consistent=1     → first catches up with everything committed (linearizable)
//   DELETE /kv/KEY                  → a tombstone
//   GET    /kv                      → every key and value (JSON)
//   GET    /status                  → {"offset": N, "keys": K}
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import {
  CairnClient,
  CairnClientError,
  type ConsumedRecord,
  FileSnapshotStore,
  type Materialized,
} from '../client/src/index.js';

export interface KvServiceOptions {
  servers: string;
  stream?: string;
  /** 0 picks a free port (see the returned url). */
  port?: number;
  /** A directory for snapshots; without one a restart replays the whole stream. */
  snapshotDir?: string;
  snapshotEvery?: number;
}

export interface KvService {
  url: string;
  view: Materialized<Map<string, string>>;
  client: CairnClient;
  close(): Promise<void>;
}

const utf8 = new TextDecoder();

/** The fold: a record with a value sets its key, a tombstone (null value) deletes it. */
export function applyKv(state: Map<string, string>, r: ConsumedRecord): Map<string, string> {
  if (r.key === null) return state; // not a key-value record: ignore
  const key = utf8.decode(r.key);
  if (r.value === null) state.delete(key);
  else state.set(key, utf8.decode(r.value));
  return state;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, payload: unknown): void {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  res.writeHead(status, { 'content-type': typeof payload === 'string' ? 'text/plain' : 'application/json' });
  res.end(text);
}

export async function startKvService(o: KvServiceOptions): Promise<KvService> {
  const stream = o.stream ?? 'kv';
  const client = new CairnClient({ servers: o.servers });
  // One partition: a single order of writes for the whole map. Compacted: the stream keeps
  // the newest value of each key, so a fresh instance replays only the live keys.
  await client.createStream(stream, { partitions: 1, compacted: true }).catch((err: unknown) => {
    if (!(err instanceof CairnClientError && err.code === 'STREAM_EXISTS')) throw err;
  });
  const view = client.materialize(stream, applyKv, {
    initial: () => new Map<string, string>(),
    ...(o.snapshotDir !== undefined ? { snapshotStore: new FileSnapshotStore(o.snapshotDir) } : {}),
    snapshotEvery: o.snapshotEvery ?? 1_000,
    encode: (m) => new TextEncoder().encode(JSON.stringify([...m])),
    decode: (b) => new Map(JSON.parse(utf8.decode(b)) as [string, string][]),
  });
  await view.ready;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://kv');
    if (url.pathname === '/status') return send(res, 200, { offset: view.offset, keys: view.state.size });
    if (url.pathname === '/kv' && req.method === 'GET') {
      if (url.searchParams.get('consistent') === '1') await view.catchUp();
      return send(res, 200, Object.fromEntries(view.state));
    }
    const m = /^\/kv\/(.+)$/.exec(url.pathname);
    if (m === null) return send(res, 404, { error: 'no such path' });
    const key = decodeURIComponent(m[1]!);
    switch (req.method) {
      case 'GET': {
        if (url.searchParams.get('consistent') === '1') await view.catchUp();
        const v = view.state.get(key);
        return v === undefined ? send(res, 404, { error: 'no such key' }) : send(res, 200, v);
      }
      case 'PUT':
      case 'DELETE': {
        const value = req.method === 'PUT' ? await body(req) : null;
        const { offset } = await client.append(stream, { key, value }, { partition: 0 });
        // Read your writes: answer once this instance's map reflects the append.
        await view.waitFor(offset);
        return send(res, 200, { offset });
      }
      default:
        return send(res, 405, { error: 'use GET, PUT or DELETE' });
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e =
        err instanceof CairnClientError ? { code: err.code, message: err.message } : { message: String(err) };
      send(res, err instanceof CairnClientError && err.code === 'UNAVAILABLE' ? 503 : 500, { error: e });
    });
  });
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    view,
    client,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await view.close();
      await client.close();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      server: { type: 'string', default: process.env['CAIRN_SERVER'] ?? '127.0.0.1:7001' },
      stream: { type: 'string', default: 'kv' },
      snapshots: { type: 'string' },
      'snapshot-every': { type: 'string', default: '1000' },
    },
  });
  const kv = await startKvService({
    servers: values.server,
    stream: values.stream,
    port: Number(values.port),
    ...(values.snapshots !== undefined ? { snapshotDir: values.snapshots } : {}),
    snapshotEvery: Number(values['snapshot-every']),
  });
  console.log(
    `kv-service listening on ${kv.url} (stream '${values.stream}', starting at offset ${kv.view.offset})`,
  );
  const stop = () => void kv.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  main().catch((err: unknown) => {
    console.error(`kv-service: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
