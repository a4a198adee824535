import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster, text } from './harness.js';

test('3 nodes elect a leader and commit proposals on all', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  const l = c.electLeader();
  const r = c.propose(l, 'a', 'b', 'c');
  assert.ok(r.ok);
  c.stabilize();
  for (const n of c.nodes.values()) {
    assert.is(n.appliedIndex, 4, `node ${n.id}`);
    assert.is(text(n.applied.get(4)), 'c');
  }
});

test.run();
