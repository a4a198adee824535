// The examples and materialize() on a real 3-node cluster: the replicated key-value
// service (instances in this process and one as a child process killed with SIGKILL and
// restarted from its snapshot), the event-sourced account service with instances racing
// on expectedOffset, and the snapshot store's handling of damaged snapshots.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../core-wasm/test/rng.js';
import { type AccountEvent, AccountService, applyEvent, Rejected } from '../../examples/accounts.js';
import { applyKv, startKvService } from '../../examples/kv-service.js';
import { type CairnClient, type ConsumedRecord, FileSnapshotStore } from '../src/index.js';
import { clientFor, ProcessCluster, readAll, text } from './support/cluster.js';

const KV_SERVICE = fileURLToPath(new URL('../../examples/kv-service.js', import.meta.url));
const ACCOUNTS = fileURLToPath(new URL('../../examples/accounts.js', import.meta.url));

const c = new ProcessCluster([1, 2, 3]);
const tmp = mkdtempSync(join(tmpdir(), 'cairn-examples-'));
let client: CairnClient;
const children = new Set<ChildProcess>();

test.before(async () => {
  await c.startAll();
  client = clientFor(c);
});

test.after(async () => {
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  await client?.close();
  await c.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

const servers = () =>
  c
    .live()
    .map((id) => c.api(id))
    .join(',');

async function http(method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method, ...(body !== undefined ? { body } : {}) });
  return { status: res.status, text: await res.text() };
}

/** Starts the kv-service as its own process; resolves with its URL and starting offset. */
async function spawnKv(dir: string): Promise<{ child: ChildProcess; url: string; startOffset: number }> {
  const child = spawn(
    process.execPath,
    [KV_SERVICE, '--port', '0', '--server', servers(), '--snapshots', dir, '--snapshot-every', '20'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kv-service not ready: ${out} ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[\d.:]+) .*starting at offset (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, startOffset: Number(m[2]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`kv-service exited ${code}: ${err}`)));
  });
}

test('kv-service: instances share one map through the stream; writes are read back from any instance', async () => {
  const a = await startKvService({ servers: servers(), stream: 'kv1' });
  const b = await startKvService({ servers: servers(), stream: 'kv1' });
  try {
    for (let i = 0; i < 20; i++) assert.is((await http('PUT', `${a.url}/kv/k${i}`, `v${i}`)).status, 200);
    // A write is in the instance that took it as soon as it answers (read your writes)…
    assert.equal(await http('GET', `${a.url}/kv/k7`), { status: 200, text: 'v7' });
    // …and in every other instance once it has caught up.
    assert.equal(await http('GET', `${b.url}/kv/k7?consistent=1`), { status: 200, text: 'v7' });
    assert.is((await http('DELETE', `${b.url}/kv/k7`)).status, 200);
    assert.is((await http('GET', `${a.url}/kv/k7?consistent=1`)).status, 404);
    // Racing writers of the same keys: both instances end with the same map.
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        http('PUT', `${(i % 2 === 0 ? a : b).url}/kv/race${i % 3}`, `w${i}`),
      ),
    );
    const ma = JSON.parse((await http('GET', `${a.url}/kv?consistent=1`)).text);
    const mb = JSON.parse((await http('GET', `${b.url}/kv?consistent=1`)).text);
    assert.equal(ma, mb);
    assert.is(Object.keys(ma).length, 19 + 3);
    // The map is exactly the fold of the stream.
    const fold = new Map<string, string>();
    for (const r of await readAll(client, 'kv1', 0)) applyKv(fold, r);
    assert.equal(ma, Object.fromEntries(fold));
  } finally {
    await a.close();
    await b.close();
  }
});

test('kv-service: an instance killed with SIGKILL restarts from its snapshot and catches up with what it missed', async () => {
  const dir = join(tmp, 'kv-snapshots');
  const peer = await startKvService({ servers: servers(), stream: 'kv' });
  let first: Awaited<ReturnType<typeof spawnKv>> | undefined;
  let second: Awaited<ReturnType<typeof spawnKv>> | undefined;
  try {
    first = await spawnKv(dir);
    assert.is(first.startOffset, 0, 'no snapshot yet: the first start replays from the beginning');
    let lastOffset = 0;
    for (let i = 0; i < 100; i++) {
      const r = await http('PUT', `${first.url}/kv/key${i}`, `value${i}`);
      assert.is(r.status, 200);
      lastOffset = JSON.parse(r.text).offset;
    }
    assert.ok(
      readdirSync(dir).some((f) => f.endsWith('.snapshot')),
      'a snapshot was saved',
    );
    const exited = new Promise((r) => first!.child.once('exit', r));
    first.child.kill('SIGKILL');
    await exited;
    // Writes while it is down, through another instance.
    for (let i = 100; i < 130; i++) await http('PUT', `${peer.url}/kv/key${i}`, `value${i}`);
    await http('DELETE', `${peer.url}/kv/key3`);
    second = await spawnKv(dir);
    // It started from a snapshot (taken every 20 records), not from the beginning.
    assert.ok(
      second.startOffset > 0 && second.startOffset <= lastOffset + 1,
      `started at ${second.startOffset}`,
    );
    const restored = JSON.parse((await http('GET', `${second.url}/kv?consistent=1`)).text);
    const truth = JSON.parse((await http('GET', `${peer.url}/kv?consistent=1`)).text);
    assert.equal(restored, truth);
    assert.is(Object.keys(restored).length, 129);
    assert.is(restored['key129'], 'value129');
  } finally {
    for (const p of [first, second]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
    await peer.close();
  }
});

test('materialize: a damaged snapshot is ignored (rebuilt from the log), a reducer that throws stops the view', async () => {
  await client.createStream('mat', { partitions: 1 });
  await client.append(
    'mat',
    Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 7}`, value: String(i) })),
    { partition: 0 },
  );
  const sum = (s: { n: number; total: number }, r: ConsumedRecord) => ({
    n: s.n + 1,
    total: s.total + Number(text(r.value)),
  });
  const store = new FileSnapshotStore(join(tmp, 'mat'));
  const v1 = client.materialize('mat', sum, {
    initial: () => ({ n: 0, total: 0 }),
    snapshotStore: store,
    snapshotEvery: 25,
  });
  await v1.catchUp();
  assert.equal(v1.state, { n: 60, total: (59 * 60) / 2 });
  await v1.close(); // saves a last snapshot
  const file = store.path('mat/0');
  assert.ok(existsSync(file));
  // A fresh view starts from the snapshot at the end: nothing to replay.
  const v2 = client.materialize('mat', sum, { initial: () => ({ n: 0, total: 0 }), snapshotStore: store });
  await v2.ready;
  assert.is(v2.offset, v1.offset);
  assert.equal(v2.state, v1.state);
  await v2.close();
  // A torn snapshot (a store that did not write atomically) is ignored with a warning.
  truncateSync(file, 40);
  const warnings: string[] = [];
  const v3 = client.materialize('mat', sum, {
    initial: () => ({ n: 0, total: 0 }),
    snapshotStore: store,
    onWarning: (e) => warnings.push(e.message),
  });
  await v3.catchUp();
  assert.equal(v3.state, v1.state);
  assert.ok(
    warnings.some((w) => /snapshot 'mat\/0' ignored/.test(w)),
    warnings.join('; '),
  );
  // New records reach a running view; waitFor resolves once it reflects an offset.
  const p = await client.append('mat', { key: 'k', value: '1000' }, { partition: 0 });
  await v3.waitFor(p.offset);
  assert.equal(v3.state, { n: 61, total: (59 * 60) / 2 + 1000 });
  await v3.close();
  // A reducer that throws stops the view with the offset in the error.
  const v4 = client.materialize(
    'mat',
    (s: number, r: ConsumedRecord) => {
      if (text(r.value) === '30') throw new Error('no thirties');
      return s + 1;
    },
    { initial: () => 0 },
  );
  const e = await v4.waitFor(p.offset).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(e !== undefined && /reducer threw .* offset \d+: no thirties/.test(e.message), e?.message);
  assert.is(v4.state, 30);
  await v4.close();
});

test('accounts: instances racing on expectedOffset never overdraw; the log replays to the same balances', async () => {
  await client.createStream('accounts', { partitions: 2 });
  const instances = [
    new AccountService(clientFor(c), 'accounts'),
    new AccountService(clientFor(c), 'accounts'),
  ];
  const accounts = ['alice', 'bob', 'carol', 'dave'];
  try {
    for (const acc of accounts) {
      await instances[0]!.execute({ type: 'open', account: acc });
      await instances[1]!.execute({ type: 'deposit', account: acc, amount: 100 });
    }
    let refused = 0;
    const work = instances.map(async (s, k) => {
      const rng = new Rng(17 + k);
      for (let i = 0; i < 60; i++) {
        const account = accounts[rng.int(accounts.length)]!;
        const cmd =
          rng.int(5) === 0
            ? { type: 'deposit' as const, account, amount: 1 + rng.int(10) }
            : { type: 'withdraw' as const, account, amount: 1 + rng.int(25) };
        await s.execute(cmd).catch((e: unknown) => {
          if (!(e instanceof Rejected)) throw e;
          refused++;
        });
      }
    });
    await Promise.all(work);
    assert.ok(
      instances[0]!.conflicts + instances[1]!.conflicts > 0,
      'the instances raced (some appends conflicted)',
    );
    assert.ok(refused > 0, 'some withdrawals were refused for lack of funds');
    // Replay the log: no balance ever goes below zero, and both instances agree with it.
    const balances = new Map<string, number>();
    for (const p of [0, 1]) {
      for (const r of await readAll(client, 'accounts', p)) {
        applyEvent(balances, JSON.parse(text(r.value)!) as AccountEvent);
        for (const [acc, b] of balances) assert.ok(b >= 0, `${acc} overdrawn to ${b}`);
      }
    }
    for (const acc of accounts) {
      assert.is(await instances[0]!.balance(acc), balances.get(acc));
      assert.is(await instances[1]!.balance(acc), balances.get(acc));
    }
    await instances[0]!
      .execute({ type: 'open', account: 'alice' })
      .then(() => assert.unreachable('opened twice'))
      .catch((e: unknown) => assert.instance(e, Rejected));
  } finally {
    for (const s of instances) await s.client.close();
  }
  // The runnable demo works too.
  const demo = spawnSync(process.execPath, [ACCOUNTS, '--server', servers(), 'demo'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /conflicts resolved: \d+; withdrawals refused \(no overdraft\): \d+/);
});

test.run();
