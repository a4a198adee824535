// A node's configuration: defaults, then a JSON config file (--config), then CAIRN_*
// environment variables, then command-line flags; each later source overrides the
// earlier ones. Everything is validated here, so the rest of the node can trust it.
import { parseArgs } from 'node:util';
import { defaultLimits, defaultRaftTiming, type Limits, type RaftTiming } from './limits.js';

export interface MemberAddress {
  id: number;
  /** host:port of the public gRPC API. */
  apiAddress: string;
  /** host:port of the peer (node-to-node) gRPC service. */
  peerAddress: string;
  /** host:port Kafka clients reach the node at (Metadata's broker address), if it has a Kafka listener. */
  kafkaAddress?: string;
}

export interface NodeConfig {
  nodeId: number;
  clusterId: string;
  dataDir: string;
  apiAddress: string;
  peerAddress: string;
  /** host:port of the Prometheus /metrics endpoint; '' turns it off. */
  metricsAddress: string;
  /** host:port the Kafka-protocol listener binds; '' turns it off. */
  kafkaAddress: string;
  /** host:port Kafka clients are told to reach this node at (Metadata); '' = kafkaAddress. */
  kafkaAdvertisedAddress: string;
  /**
   * The cluster's members as this node first knows them. Without `join`, they are the
   * initial cluster, identical on every initial node, and this node must be one of them.
   * With `join`, they are the existing nodes to reach; the cluster adds this node itself.
   */
  members: MemberAddress[];
  /** Join an existing cluster instead of bootstrapping a new one. */
  join: boolean;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  raft: RaftTiming;
  limits: Limits;
  /**
   * Test only: keep every write in memory until it is fsynced, so that a SIGKILL of the
   * process loses what a power loss would (storage/lose-unsynced-fs.ts). Never for data.
   */
  unsafeLoseUnsyncedWrites: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** One configuration key: its JSON name, flag, environment variable and type. */
interface Key {
  path: string[];
  flag: string;
  env: string;
  kind: 'int' | 'string' | 'bool' | 'members';
  help: string;
}

const keys: Key[] = [
  { path: ['nodeId'], flag: 'node-id', env: 'CAIRN_NODE_ID', kind: 'int', help: 'this node id (≥ 1)' },
  { path: ['clusterId'], flag: 'cluster-id', env: 'CAIRN_CLUSTER_ID', kind: 'string', help: 'cluster name' },
  { path: ['dataDir'], flag: 'data-dir', env: 'CAIRN_DATA_DIR', kind: 'string', help: 'data directory' },
  {
    path: ['apiAddress'],
    flag: 'api-address',
    env: 'CAIRN_API_ADDRESS',
    kind: 'string',
    help: 'host:port of the public API',
  },
  {
    path: ['peerAddress'],
    flag: 'peer-address',
    env: 'CAIRN_PEER_ADDRESS',
    kind: 'string',
    help: 'host:port for other nodes',
  },
  {
    path: ['metricsAddress'],
    flag: 'metrics-address',
    env: 'CAIRN_METRICS_ADDRESS',
    kind: 'string',
    help: "host:port of /metrics ('' = off)",
  },
  {
    path: ['kafkaAddress'],
    flag: 'kafka-address',
    env: 'CAIRN_KAFKA_ADDRESS',
    kind: 'string',
    help: "host:port of the Kafka-protocol listener ('' = off)",
  },
  {
    path: ['kafkaAdvertisedAddress'],
    flag: 'kafka-advertised-address',
    env: 'CAIRN_KAFKA_ADVERTISED_ADDRESS',
    kind: 'string',
    help: "host:port Kafka clients are sent to ('' = kafka-address)",
  },
  {
    path: ['members'],
    flag: 'members',
    env: 'CAIRN_MEMBERS',
    kind: 'members',
    help: 'ID=API_ADDR/PEER_ADDR[/KAFKA_ADDR],… (initial cluster, or nodes to join)',
  },
  { path: ['join'], flag: 'join', env: 'CAIRN_JOIN', kind: 'bool', help: 'join an existing cluster' },
  { path: ['logLevel'], flag: 'log-level', env: 'CAIRN_LOG_LEVEL', kind: 'string', help: 'pino log level' },
  {
    path: ['unsafeLoseUnsyncedWrites'],
    flag: 'unsafe-lose-unsynced-writes',
    env: 'CAIRN_UNSAFE_LOSE_UNSYNCED_WRITES',
    kind: 'bool',
    help: 'test only: SIGKILL loses unsynced writes, as a power loss',
  },
  ...(['tickMs', 'electionTicks', 'heartbeatTicks'] as const).map(
    (k): Key => ({ path: ['raft', k], flag: kebab(k), env: envName(k), kind: 'int', help: `Raft ${k}` }),
  ),
  ...(Object.keys(defaultLimits) as (keyof Limits)[]).map(
    (k): Key => ({ path: ['limits', k], flag: kebab(k), env: envName(k), kind: 'int', help: `limit ${k}` }),
  ),
];

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function envName(name: string): string {
  return `CAIRN_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Help text for `cairn serve --help`. */
export function configHelp(): string {
  const rows = keys.map((k) => `  --${k.flag.padEnd(36)} ${k.env.padEnd(44)} ${k.help}`);
  return [`  --${'config FILE'.padEnd(36)} ${'CAIRN_CONFIG'.padEnd(44)} JSON config file`, ...rows].join(
    '\n',
  );
}

export function defaultConfig(): NodeConfig {
  return {
    nodeId: 1,
    clusterId: 'cairn',
    dataDir: './cairn-data',
    apiAddress: '127.0.0.1:7001',
    peerAddress: '127.0.0.1:7101',
    metricsAddress: '',
    kafkaAddress: '',
    kafkaAdvertisedAddress: '',
    members: [],
    join: false,
    logLevel: 'info',
    unsafeLoseUnsyncedWrites: false,
    raft: { ...defaultRaftTiming },
    limits: { ...defaultLimits },
  };
}

/**
 * Builds and validates a configuration from the command line (`argv` without the
 * subcommand), the environment and the config file it names. `readFile` reads the file
 * (a seam for tests). Throws ConfigError with a message naming the bad setting.
 */
export function loadConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  readFile: (path: string) => string,
): NodeConfig {
  const options: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' } };
  for (const k of keys) options[k.flag] = { type: k.kind === 'bool' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;

  const config = defaultConfig() as unknown as Record<string, unknown>;
  const file = (flags['config'] as string | undefined) ?? env['CAIRN_CONFIG'];
  if (file !== undefined && file !== '') {
    let json: unknown;
    try {
      json = JSON.parse(readFile(file));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    mergeFile(config, json, file);
  }
  for (const k of keys) {
    const raw = env[k.env];
    if (raw !== undefined) set(config, k, fromText(k, raw, k.env));
  }
  for (const k of keys) {
    const raw = flags[k.flag];
    if (raw === undefined) continue;
    set(config, k, typeof raw === 'boolean' ? raw : fromText(k, raw, `--${k.flag}`));
  }
  return validate(config as unknown as NodeConfig);
}

function set(config: Record<string, unknown>, key: Key, value: unknown): void {
  let obj = config;
  for (const p of key.path.slice(0, -1)) obj = obj[p] as Record<string, unknown>;
  obj[key.path[key.path.length - 1]!] = value;
}

function fromText(key: Key, raw: string, source: string): unknown {
  switch (key.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${source}: '${raw}' is not an integer`);
      return Number(raw);
    }
    case 'bool':
      if (/^(1|true|yes)$/i.test(raw)) return true;
      if (/^(0|false|no|)$/i.test(raw)) return false;
      throw new ConfigError(`${source}: '${raw}' is not a boolean`);
    case 'string':
      return raw;
    case 'members':
      return parseMembers(raw, source);
  }
}

/** "1=127.0.0.1:7001/127.0.0.1:7101[/127.0.0.1:9092],2=…" → members. */
export function parseMembers(text: string, source = 'members'): MemberAddress[] {
  if (text.trim() === '') return [];
  return text.split(',').map((item) => {
    const m = /^\s*(\d+)=([^/\s]+)\/([^/\s]+)(?:\/([^/\s]+))?\s*$/.exec(item);
    if (!m) throw new ConfigError(`${source}: '${item}' is not ID=API_ADDRESS/PEER_ADDRESS[/KAFKA_ADDRESS]`);
    const member: MemberAddress = { id: Number(m[1]), apiAddress: m[2]!, peerAddress: m[3]! };
    if (m[4] !== undefined) member.kafkaAddress = m[4];
    return member;
  });
}

export function formatMembers(members: MemberAddress[]): string {
  return members
    .map((m) => `${m.id}=${m.apiAddress}/${m.peerAddress}${m.kafkaAddress ? `/${m.kafkaAddress}` : ''}`)
    .join(',');
}

function mergeFile(config: Record<string, unknown>, json: unknown, file: string): void {
  if (!isObject(json)) throw new ConfigError(`config file ${file}: expected a JSON object`);
  for (const [name, value] of Object.entries(json)) {
    if (name === 'raft' || name === 'limits') {
      if (!isObject(value)) throw new ConfigError(`config file ${file}: '${name}' must be an object`);
      const target = config[name] as Record<string, unknown>;
      for (const [sub, v] of Object.entries(value)) {
        if (!Object.hasOwn(target, sub))
          throw new ConfigError(`config file ${file}: unknown key '${name}.${sub}'`);
        target[sub] = v;
      }
    } else {
      if (!Object.hasOwn(config, name)) throw new ConfigError(`config file ${file}: unknown key '${name}'`);
      config[name] = value;
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function isAddress(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

/** Largest node id: ids travel as uint32 in the API and as small ints in frames. */
export const MAX_NODE_ID = 0x7fff_ffff;

export function isNodeId(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_NODE_ID;
}

function validate(c: NodeConfig): NodeConfig {
  const fail = (msg: string): never => {
    throw new ConfigError(msg);
  };
  if (!isNodeId(c.nodeId)) fail(`nodeId must be an integer in [1, ${MAX_NODE_ID}], got ${c.nodeId}`);
  if (typeof c.clusterId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(c.clusterId))
    fail(`clusterId must be 1-64 characters of [A-Za-z0-9._-], got '${c.clusterId}'`);
  if (typeof c.dataDir !== 'string' || c.dataDir === '') fail('dataDir must be a non-empty path');
  if (!isAddress(c.apiAddress)) fail(`apiAddress must be host:port, got '${c.apiAddress}'`);
  if (!isAddress(c.peerAddress)) fail(`peerAddress must be host:port, got '${c.peerAddress}'`);
  if (c.metricsAddress !== '' && !isAddress(c.metricsAddress))
    fail(`metricsAddress must be host:port or '', got '${c.metricsAddress}'`);
  if (c.kafkaAddress !== '' && !isAddress(c.kafkaAddress))
    fail(`kafkaAddress must be host:port or '', got '${c.kafkaAddress}'`);
  if (c.kafkaAdvertisedAddress !== '' && !isAddress(c.kafkaAdvertisedAddress))
    fail(`kafkaAdvertisedAddress must be host:port or '', got '${c.kafkaAdvertisedAddress}'`);
  if (c.kafkaAdvertisedAddress !== '' && c.kafkaAddress === '')
    fail('kafkaAdvertisedAddress needs kafkaAddress (the listener it advertises)');
  if (typeof c.join !== 'boolean') fail('join must be a boolean');
  if (!levels.includes(c.logLevel)) fail(`logLevel must be one of ${levels.join(', ')}, got '${c.logLevel}'`);
  if (!Array.isArray(c.members)) fail('members must be a list');
  const ids = new Set<number>();
  for (const m of c.members) {
    if (
      !isObject(m) ||
      !isNodeId(m.id) ||
      !isAddress(m.apiAddress) ||
      !isAddress(m.peerAddress) ||
      (m.kafkaAddress !== undefined && !isAddress(m.kafkaAddress))
    )
      fail(`bad member ${JSON.stringify(m)}: expected {id, apiAddress, peerAddress[, kafkaAddress]}`);
    if (ids.has(m.id)) fail(`member ${m.id} is listed twice`);
    ids.add(m.id);
  }
  const self = c.members.find((m) => m.id === c.nodeId);
  if (!c.join) {
    if (c.members.length === 0) {
      // A single-node cluster needs no member list: it is just this node.
      c.members = [{ id: c.nodeId, apiAddress: c.apiAddress, peerAddress: c.peerAddress }];
      const kafka = c.kafkaAdvertisedAddress || c.kafkaAddress;
      if (kafka !== '') c.members[0]!.kafkaAddress = kafka;
    } else if (self === undefined) {
      fail(`node ${c.nodeId} is not in members; a new cluster's nodes must all be listed`);
    } else if (self.apiAddress !== c.apiAddress || self.peerAddress !== c.peerAddress) {
      fail(`members lists node ${c.nodeId} with other addresses than apiAddress/peerAddress`);
    }
  } else if (c.members.filter((m) => m.id !== c.nodeId).length === 0) {
    fail('join needs members: at least one existing node to reach');
  }
  for (const [name, v] of Object.entries(c.raft)) {
    if (!Number.isSafeInteger(v) || v < 1) fail(`raft.${name} must be a positive integer, got ${v}`);
  }
  if (c.raft.heartbeatTicks >= c.raft.electionTicks)
    fail('raft.heartbeatTicks must be below raft.electionTicks');
  for (const [name, v] of Object.entries(c.limits)) {
    if (!Number.isSafeInteger(v) || v < 1) fail(`limits.${name} must be a positive integer, got ${v}`);
  }
  if (c.limits.maxRecordBytes > c.limits.maxBatchBytes)
    fail('limits.maxRecordBytes exceeds limits.maxBatchBytes');
  if (c.limits.maxBatchBytes > c.limits.maxRequestBytes - 1024)
    fail('limits.maxBatchBytes must leave room in limits.maxRequestBytes for the request around it');
  if (c.limits.maxAppendEntriesBytes + 1024 * 1024 > c.limits.maxPeerFrameBytes)
    fail('limits.maxPeerFrameBytes must exceed limits.maxAppendEntriesBytes by at least 1 MiB');
  if (c.limits.maxBatchBytes > c.limits.maxAppendEntriesBytes)
    fail('limits.maxBatchBytes must fit in limits.maxAppendEntriesBytes (one entry per message at least)');
  if (c.limits.snapshotChunkBytes + 1024 * 1024 > c.limits.maxPeerFrameBytes)
    fail('limits.maxPeerFrameBytes must exceed limits.snapshotChunkBytes by at least 1 MiB');
  return c;
}
