// A peer that sends garbage, oversized or malformed frames is disconnected and logged; the
// node process keeps serving.

import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame } from '../src/peer/frame.js';
import { ProcessCluster } from './support/procs.js';
import { rawPeer } from './support/raw-peer.js';
import { checkReplicas, Producer } from './support/workload.js';

const MiB = 1024 * 1024;
const limits = [
  ['--max-peer-frame-bytes', 3 * MiB],
  ['--max-append-entries-bytes', 1 * MiB],
  ['--max-batch-bytes', 1 * MiB],
  ['--max-request-bytes', 2 * MiB],
  ['--snapshot-chunk-bytes', MiB / 2],
].flatMap(([k, v]) => [String(k), String(v)]);

test('garbage, oversized and malformed peer frames are refused; the node keeps serving', async () => {
  const c = new ProcessCluster([1, 2, 3], limits);
  try {
    await c.startAll();
    await c.createStream('g', 1);
    const p = new Producer(c, 'g', 0, 'g');
    await p.init();
    for (let i = 0; i < 10; i++) await p.next();
    const peer = `127.0.0.1:${c.ports.get(2)!.peer}`;

    const garbage = rawPeer(peer);
    garbage.call.write(Buffer.from('\xc1\xc1 definitely not a frame'));
    assert.is(await garbage.closed, 'INVALID_ARGUMENT');
    garbage.client.close();

    const huge = rawPeer(peer);
    huge.call.write(Buffer.alloc(4 * MiB, 1));
    assert.is(await huge.closed, 'RESOURCE_EXHAUSTED');
    huge.client.close();

    // A proper handshake claiming to be node 1, then an append whose entry is not a batch.
    const liar = rawPeer(peer);
    liar.call.write(Buffer.from(encodeFrame({ kind: 'hello', from: 1, clusterId: 'cairn', to: 2 })));
    const bad = {
      type: 'append',
      term: 99,
      from: 1,
      to: 2,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [{ index: 1, term: 99, type: 'normal', data: new Uint8Array(70) }],
    };
    liar.call.write(new Packr({ useRecords: false }).pack([1, 1, 1, 'cairn', [[1, [bad]]]]));
    assert.ok(['ABORTED', 'CANCELLED', 'end'].includes(await liar.closed));
    liar.client.close();

    // Still serving, and the cluster still replicates through node 2.
    for (let i = 0; i < 10; i++) await p.next();
    const s = await c.nodeStatus(2);
    assert.ok(
      s.groups.every((g) => g.term < 99n),
      'the forged term never reached a Raft core',
    );
    await checkReplicas(c, [1, 2, 3], 'g', 0, [p]);
    const metrics = await (await fetch(`http://127.0.0.1:${c.ports.get(2)!.metrics}/metrics`)).text();
    assert.match(metrics, /cairn_peer_bad_frames\{peer="1"\} [1-9]/);
    // The rest of the endpoint: per-group Raft state, latency histograms, bytes.
    assert.match(metrics, /cairn_group_role\{group="1",stream="g",partition="0"\} [14]/);
    assert.match(metrics, /cairn_group_commit_index\{group="0",stream="",partition="0"\} [1-9]/);
    assert.match(metrics, /cairn_persist_seconds_count [1-9]/);
    assert.match(metrics, /cairn_peer_bytes_in\{peer="1"\} [1-9]/);
  } finally {
    await c.stopAll();
  }
});

test.run();
