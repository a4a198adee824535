// Consumer offsets through the client and the real gRPC API, on an in-process node over
// in-memory stores (the process-cluster case, on disk and across a leader kill, is in
// e2e.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer } from '../../node/src/api/server.js';
import { defaultLimits } from '../../node/src/limits.js';
import { realClock } from '../../node/src/seams/clock.js';
import { InProcessCluster } from '../../node/test/support/inproc.js';
import { freePort } from '../../node/test/support/procs.js';
import { CairnClient, CairnClientError } from '../src/index.js';

test('consumer offsets: none before a commit (-1); commit then fetch returns offset and metadata; groups and partitions are separate', async () => {
  const api = `127.0.0.1:${await freePort()}`;
  const c = new InProcessCluster(1);
  let server: ApiServer | undefined;
  let client: CairnClient | undefined;
  try {
    const node = await c.start(1, ['--api-address', api, '--members', `1=${api}/127.0.0.1:7101`]);
    await c.leaderOf(0);
    server = await ApiServer.listen({ node, clock: realClock(), limits: defaultLimits, listenAddress: api });
    client = new CairnClient({ servers: [api] });
    await client.createStream('consumed', { partitions: 2 });
    assert.equal(await client.fetchOffset('g1', 'consumed', 1), { offset: -1, metadata: '' });
    await client.commitOffset('g1', 'consumed', 1, 42, 'checkpoint-1');
    assert.equal(await client.fetchOffset('g1', 'consumed', 1), { offset: 42, metadata: 'checkpoint-1' });
    await client.commitOffset('g1', 'consumed', 1, 43);
    assert.equal(await client.fetchOffset('g1', 'consumed', 1), { offset: 43, metadata: '' });
    assert.equal(await client.fetchOffset('g2', 'consumed', 1), { offset: -1, metadata: '' });
    assert.equal(await client.fetchOffset('g1', 'consumed', 0), { offset: -1, metadata: '' });
    // Commits are entries in the partition's log, but never records a reader sees.
    const p = await client.append('consumed', { value: 'data' }, { partition: 1 });
    const r = await client.read('consumed', 1, { offset: 0 });
    assert.equal(
      r.records.map((x) => x.offset),
      [p.offset],
    );
    // Bad group names are refused, typed.
    try {
      await client.commitOffset('bad group!', 'consumed', 0, 1);
      assert.unreachable('a bad group name was accepted');
    } catch (err) {
      assert.instance(err, CairnClientError);
      assert.is((err as CairnClientError).code, 'INVALID_REQUEST');
    }
  } finally {
    await client?.close();
    await server?.close();
    await c.stopAll();
  }
});

test.run();
