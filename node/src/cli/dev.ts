// `cairn dev [--nodes 3] [--data DIR] [--base-port P] [-- serve flags…]`: a local cluster
// of N `cairn serve` processes, one data directory each under DIR, listening on
// 127.0.0.1 with ports counted from P:
//
//   node i (1-based):  API P + i - 1,  peer P + 100 + i - 1,  metrics P + 200 + i - 1,
//                      Kafka K + i - 1 (--kafka-base-port K, default 9092; 0 = no Kafka listener)
//
// It prints the API addresses once every node is serving. Ctrl-C or SIGTERM stops every
// child it started, by PID: SIGTERM first (graceful: fsyncs finish, segments close), then
// SIGKILL for any still running after a grace period. Flags after `--` go to every node.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatMembers, type MemberAddress } from '../config.js';
import type { Command } from './main.js';

const usage = `usage: cairn dev [--nodes N] [--data DIR] [--base-port P] [-- serve flags…]
  --nodes       cluster size (default 3)
  --data        parent of the nodes' data directories (default ./cairn-dev)
  --base-port   first port (default 7001): node i gets API P+i-1, peer P+100+i-1, metrics P+200+i-1
  --kafka-base-port K   node i's Kafka listener is K+i-1 (default 9092; 0 = none)
Each node logs to DIR/node-<id>.log. Ctrl-C stops them all.`;

/** The ports `cairn dev` gives node `id` (1-based). */
export function devPorts(basePort: number, id: number): { api: number; peer: number; metrics: number } {
  return { api: basePort + id - 1, peer: basePort + 100 + id - 1, metrics: basePort + 200 + id - 1 };
}

const STOP_GRACE_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;

export const devCommand: Command = {
  summary: 'run a local N-node cluster (one process per node)',
  async run(argv) {
    const dashdash = argv.indexOf('--');
    const own = dashdash < 0 ? argv : argv.slice(0, dashdash);
    const passThrough = dashdash < 0 ? [] : argv.slice(dashdash + 1);
    let values: {
      nodes?: string;
      data?: string;
      'base-port'?: string;
      'kafka-base-port'?: string;
      help?: boolean;
    };
    try {
      ({ values } = parseArgs({
        args: own,
        options: {
          nodes: { type: 'string' },
          data: { type: 'string' },
          'base-port': { type: 'string' },
          'kafka-base-port': { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (err) {
      console.error(`cairn dev: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const n = Number(values.nodes ?? 3);
    const basePort = Number(values['base-port'] ?? 7001);
    const dataRoot = resolve(values.data ?? 'cairn-dev');
    if (!Number.isInteger(n) || n < 1 || n > 9) {
      console.error('cairn dev: --nodes must be an integer from 1 to 9');
      return 2;
    }
    if (!Number.isInteger(basePort) || basePort < 1 || basePort + 200 + n > 65535) {
      console.error('cairn dev: --base-port must leave room for 200 + N ports below 65536');
      return 2;
    }
    const kafkaBasePort = Number(values['kafka-base-port'] ?? 9092);
    if (!Number.isInteger(kafkaBasePort) || kafkaBasePort < 0 || kafkaBasePort + n > 65535) {
      console.error('cairn dev: --kafka-base-port must be 0 or leave room for N ports below 65536');
      return 2;
    }
    return runCluster(n, basePort, kafkaBasePort, dataRoot, passThrough);
  },
};

async function runCluster(
  n: number,
  basePort: number,
  kafkaBasePort: number,
  dataRoot: string,
  passThrough: string[],
): Promise<number> {
  const members: MemberAddress[] = [];
  for (let id = 1; id <= n; id++) {
    const p = devPorts(basePort, id);
    const m: MemberAddress = { id, apiAddress: `127.0.0.1:${p.api}`, peerAddress: `127.0.0.1:${p.peer}` };
    if (kafkaBasePort > 0) m.kafkaAddress = `127.0.0.1:${kafkaBasePort + id - 1}`;
    members.push(m);
  }
  mkdirSync(dataRoot, { recursive: true });
  const cairn = fileURLToPath(new URL('../../../../bin/cairn.js', import.meta.url));
  const children = new Map<number, ChildProcess>();
  let stopping = false;

  const stopAll = async (): Promise<void> => {
    stopping = true;
    const alive = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of alive) c.kill('SIGTERM');
    const exited = Promise.all(
      alive.map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r())))),
    );
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((r) => {
      timer = setTimeout(() => r('late'), STOP_GRACE_MS);
    });
    if ((await Promise.race([exited, grace])) === 'late') {
      for (const c of alive) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await exited;
    }
    clearTimeout(timer);
  };

  const ready: Promise<void>[] = [];
  for (const m of members) {
    const p = devPorts(basePort, m.id);
    const dataDir = join(dataRoot, `node-${m.id}`);
    mkdirSync(dataDir, { recursive: true });
    const log = openSync(join(dataRoot, `node-${m.id}.log`), 'a');
    const args = [
      cairn,
      'serve',
      '--node-id',
      String(m.id),
      '--data-dir',
      dataDir,
      '--api-address',
      m.apiAddress,
      '--peer-address',
      m.peerAddress,
      '--metrics-address',
      `127.0.0.1:${p.metrics}`,
      ...(m.kafkaAddress ? ['--kafka-address', m.kafkaAddress] : []),
      '--members',
      formatMembers(members),
      ...passThrough,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] });
    children.set(m.id, child);
    ready.push(
      new Promise((resolveReady, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolveReady();
        });
        child.once('exit', (code, signal) => {
          reject(
            new Error(
              `node ${m.id} exited (${code ?? signal}) before it was ready; see ${join(dataRoot, `node-${m.id}.log`)}`,
            ),
          );
        });
      }),
    );
    child.once('exit', (code, signal) => {
      if (!stopping) console.error(`cairn dev: node ${m.id} (pid ${child.pid}) exited: ${code ?? signal}`);
    });
  }

  const onSignal = () => {
    if (stopping) return;
    console.error('\ncairn dev: stopping…');
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(ready),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('nodes not ready in time')), READY_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    console.error(`cairn dev: ${(err as Error).message}`);
    await stopAll();
    return 1;
  } finally {
    clearTimeout(timer);
  }
  console.log(`cairn dev: ${n}-node cluster running (data under ${dataRoot}); Ctrl-C stops it`);
  for (const m of members) {
    const p = devPorts(basePort, m.id);
    console.log(
      `  node ${m.id}  pid ${children.get(m.id)!.pid}  api ${m.apiAddress}` +
        (m.kafkaAddress ? `  kafka ${m.kafkaAddress}` : '') +
        `  metrics http://127.0.0.1:${p.metrics}/metrics`,
    );
  }
  console.log(`servers: ${members.map((m) => m.apiAddress).join(',')}`);
  if (kafkaBasePort > 0) console.log(`kafka bootstrap: ${members.map((m) => m.kafkaAddress).join(',')}`);
  // Stay up until a signal; the handlers exit the process.
  await new Promise<never>(() => {});
  return 0;
}
