// A client in another language, written from the .proto alone: client/python/cairn_client.py
// generates its stubs with protoc + the gRPC Python plugin at run time, then appends and
// reads through a follower (so it must follow NOT_LEADER from the error trailer). What it
// wrote is read back with the TypeScript client, and what the TypeScript client wrote
// (LZ4-compressed, client-built batches) is read back with Python.
//
// Needs Debian's python3-grpcio, python3-protobuf, protobuf-compiler and
// protobuf-compiler-grpc (.ci/run installs them). Without them the test is reported as
// skipped with the command that installs them; with CI=true it is required and fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientFor, leaderOf, ProcessCluster, readAll, text } from './support/cluster.js';

const SCRIPT = fileURLToPath(new URL('../../../client/python/cairn_client.py', import.meta.url));
const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));
const APT = 'apt-get install -y python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc';

/**
 * A Python that has grpcio and protobuf (Debian's /usr/bin/python3 first: apt installs
 * there), with protoc and the gRPC plugin beside it; otherwise what is missing.
 */
function findPython(): { python: string } | { missing: string } {
  const tools = ['protoc', 'grpc_python_plugin'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  const python = ['/usr/bin/python3', 'python3'].find(
    (py) => spawnSync(py, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' }).status === 0,
  );
  if (python !== undefined && tools.length === 0) return { python };
  const what = [...(python === undefined ? ['python3 with grpcio and protobuf'] : []), ...tools].join(', ');
  return { missing: `no ${what}: run \`${APT}\`` };
}

const found = findPython();
const required = process.env.CI === 'true';
if ('missing' in found && !required)
  console.log(`skipped: the Python client test needs tools: ${found.missing}`);

('missing' in found && !required ? test.skip : test)(
  'a Python client generated from the .proto appends and reads, follows redirects, and gets typed errors',
  async () => {
    assert.ok(existsSync(SCRIPT), SCRIPT);
    if ('missing' in found) throw new Error(`CI=true requires the Python client test: ${found.missing}`);
    const { python } = found;

    const c = new ProcessCluster([1, 2, 3]);
    const client = (() => {
      let cl: ReturnType<typeof clientFor> | undefined;
      return { get: () => (cl ??= clientFor(c)), close: () => cl?.close() };
    })();
    try {
      await c.startAll();
      await client.get().createStream('py', { partitions: 2 });
      const leader = await leaderOf(c, 'py', 0);
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      const run = (args: string[]) => {
        const r = spawnSync(python, [SCRIPT, '--proto', PROTO_DIR, '--server', c.api(follower), ...args], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        assert.is(r.status, 0, `python exited ${r.status}: ${r.stderr}`);
        return JSON.parse(r.stdout);
      };

      const out = run(['--stream', 'py', '--count', '10']);
      assert.is(out.partitions, 2);
      assert.is(out.append.partition, 0);
      assert.is(Number(out.append.last) - Number(out.append.base), 10, '11 records, consecutive offsets');
      assert.equal(
        out.read.map((r: { value: string | null }) => r.value),
        [...Array.from({ length: 10 }, (_, i) => `py-${i}`), null],
      );
      assert.equal(out.read[0].headers, { lang: 'python' });
      // Typed errors read from the trailer by Python.
      const range = out.errors.out_of_range;
      assert.is(range.status, 'OUT_OF_RANGE');
      assert.is(range.code, 'OFFSET_OUT_OF_RANGE');
      assert.is(range.log_start_offset, 0);
      // The keyed appends in between may have moved partition 0's end.
      const { highWatermark } = await client.get().offsets('py', 0);
      assert.is(range.high_watermark, highWatermark);
      assert.equal(out.errors.not_found, { status: 'NOT_FOUND', code: 'STREAM_NOT_FOUND' });

      // The TypeScript client sees exactly what Python wrote…
      const fromTs = await readAll(client.get(), 'py', 0);
      const pyRecords = fromTs.filter(
        (r) => r.offset >= Number(out.append.base) && r.offset <= Number(out.append.last),
      );
      assert.equal(
        pyRecords.map((r) => [r.offset, text(r.value), r.headers.map((h) => [h.key, text(h.value)])]),
        out.read.map((r: { offset: number; value: string | null; headers: Record<string, string> }) => [
          Number(r.offset),
          r.value,
          Object.entries(r.headers),
        ]),
      );
      // …and the server's key → partition routing (AppendRequest.partition_key) matches the TS client's.
      for (const [key, at] of Object.entries(
        out.keyed as Record<string, { partition: number; offset: number }>,
      )) {
        assert.is(at.partition, await client.get().partitionFor('py', key), key);
        const r = await client.get().read('py', at.partition, { offset: Number(at.offset), maxRecords: 1 });
        assert.is(text(r.records[0]!.value), `fruit ${key}`);
      }

      // Python reads what the TypeScript client wrote: client-built, LZ4-compressed batches.
      const packer = clientFor(c, { compression: 'lz4' });
      try {
        await packer.createStream('from-ts', { partitions: 1 });
        const values = Array.from({ length: 50 }, (_, i) => `ts-${i} ${'z'.repeat(i)}`);
        await packer.append(
          'from-ts',
          values.map((value, i) => ({ key: `k${i}`, value })),
          { partition: 0 },
        );
        const back = run(['--stream', 'from-ts', '--read-only']);
        assert.equal(
          back.read.map((r: { key: string; value: string }) => [r.key, r.value]),
          values.map((v, i) => [`k${i}`, v]),
        );
      } finally {
        await packer.close();
      }
    } finally {
      await client.close();
      await c.stopAll();
    }
  },
);

test.run();
