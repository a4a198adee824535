// `cairn serve`: one Cairn node — the Raft groups, the peer transport, the public gRPC
// API and the metrics endpoint — wired with the real seams (clock, randomness, network,
// disk). SIGINT or SIGTERM shut it down gracefully: the API stops taking calls, groups
// stop, storage finishes its fsyncs and closes its segments, then the process exits.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { createCore } from '../../../core-wasm/src/index.js';
import {
  AdminService,
  InitProducerRequestSchema,
  NodeStatusRequestSchema,
  StreamService,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';
import type { Message } from '../../../raft/src/index.js';
import { fromServiceError } from '../api/grpc-errors.js';
import { callUnary } from '../api/grpc-service.js';
import { ApiServer, nodeStatusFromMessage } from '../api/server.js';
import { ConfigError, configHelp, loadConfig, type NodeConfig } from '../config.js';
import { IdentityError } from '../identity.js';
import { KafkaServer } from '../kafka/server.js';
import { createLogger, type Logger } from '../ops/log.js';
import { NodeMetrics, serveMetrics } from '../ops/metrics.js';
import { GrpcTransport } from '../peer/grpc-transport.js';
import { raftMessageValidator } from '../peer/raft-messages.js';
import { realClock } from '../seams/clock.js';
import { systemRandom } from '../seams/random.js';
import { type StartedNode, startNode } from '../start-node.js';
import { type FileSystem, LoseUnsyncedFileSystem, NodeFileSystem } from '../storage/index.js';
import type { Command } from './main.js';

const usage = `usage: cairn serve [options]

Runs one Cairn node. Settings come from defaults, then --config FILE (JSON with the keys
below in camelCase; raft.* and limits.* nested), then CAIRN_* environment variables, then
flags. A new cluster: start every node with the same --members. Adding a node to a running
cluster: start it with --join and --members naming nodes to reach, then AddNode.

options (flag, environment variable, meaning):
${configHelp()}`;

export const serveCommand: Command = {
  summary: 'run one Cairn node',
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) {
      console.log(usage);
      return 0;
    }
    let config: NodeConfig;
    try {
      config = loadConfig(argv, process.env, (p) => readFileSync(p, 'utf8'));
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`cairn serve: ${err.message}`);
        return 2;
      }
      throw err;
    }
    return serve(config);
  },
};

async function serve(config: NodeConfig): Promise<number> {
  const log: Logger = createLogger(config.logLevel, { node: config.nodeId });
  // Every file the node writes goes through this seam (DESIGN §1), the identity file too.
  const fs: FileSystem = config.unsafeLoseUnsyncedWrites
    ? new LoseUnsyncedFileSystem()
    : new NodeFileSystem();
  if (config.unsafeLoseUnsyncedWrites)
    log.warn(
      'unsafe-lose-unsynced-writes: writes are kept in memory until fsynced (a test mode, never for data)',
    );
  const clock = realClock();
  const random = systemRandom();
  const core = createCore();

  // Clients to other members' API (ClusterStatus; the Kafka listener's InitProducerId on
  // the metadata leader); one channel per address.
  const clients = new Map<string, grpc.Client>();
  const apiClient = (address: string): grpc.Client => {
    let c = clients.get(address);
    if (c === undefined) {
      c = new grpc.Client(address, grpc.credentials.createInsecure());
      clients.set(address, c);
    }
    return c;
  };
  const peerStatus = async (member: { apiAddress: string }, timeoutMs: number) => {
    try {
      const res = await callUnary(
        apiClient(member.apiAddress),
        AdminService,
        'nodeStatus',
        create(NodeStatusRequestSchema),
        {
          deadline: Date.now() + timeoutMs,
        },
      );
      return nodeStatusFromMessage(res);
    } catch (err) {
      throw fromServiceError(err as grpc.ServiceError);
    }
  };
  const initProducerAt = async (address: string) => {
    try {
      const res = await callUnary(
        apiClient(address),
        StreamService,
        'initProducer',
        create(InitProducerRequestSchema),
        {
          deadline: Date.now() + config.limits.requestTimeoutMs,
        },
      );
      return { producerId: Number(res.producerId), producerEpoch: res.producerEpoch };
    } catch (err) {
      throw fromServiceError(err as grpc.ServiceError);
    }
  };

  let metrics: NodeMetrics | undefined;
  let shuttingDown: Promise<void> | undefined;
  let exitCode = 0;
  let started: StartedNode<GrpcTransport<Message>>;
  try {
    started = await startNode(
      config,
      {
        fs,
        clock,
        random,
        core,
        log,
        listen: () =>
          GrpcTransport.listen<Message>({
            nodeId: config.nodeId,
            clusterId: config.clusterId,
            listenAddress: config.peerAddress,
            limits: config.limits,
            validate: raftMessageValidator(core),
            clock,
            random,
            log,
          }),
      },
      {
        peerStatus,
        pid: process.pid,
        onFatal: () => {
          exitCode = 1;
          void shutdown('storage failure');
        },
        onAppend: (seconds, bytes) => {
          metrics?.appendSeconds.observe(seconds);
          metrics?.apiBytesIn.inc(bytes);
        },
        onRead: (bytes) => metrics?.apiBytesOut.inc(bytes),
        onPersist: (seconds) => metrics?.persistSeconds.observe(seconds),
        onGroupRestart: (cause) => metrics?.groupRestarts.inc({ cause }),
      },
    );
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err;
    console.error(`cairn serve: ${err.message}`);
    return 2;
  }
  const { node, transport } = started;

  let api: ApiServer;
  try {
    api = await ApiServer.listen({ node, clock, limits: config.limits, listenAddress: config.apiAddress });
  } catch (err) {
    console.error(`cairn serve: ${(err as Error).message}`);
    await node.stop();
    await transport.close();
    return 1;
  }

  let kafka: KafkaServer | undefined;
  if (config.kafkaAddress !== '') {
    try {
      kafka = await KafkaServer.listen({
        node,
        clock,
        initProducerAt,
        nodeId: config.nodeId,
        advertised: config.kafkaAdvertisedAddress || config.kafkaAddress,
        maxWaitMs: config.limits.maxReadWaitMs,
        maxReadBytes: config.limits.maxReadBytes,
        listenAddress: config.kafkaAddress,
        maxFrameBytes: config.limits.maxRequestBytes,
        log,
      });
    } catch (err) {
      console.error(`cairn serve: ${(err as Error).message}`);
      await api.close();
      await node.stop();
      await transport.close();
      return 1;
    }
  }

  let metricsServer: Server | undefined;
  if (config.metricsAddress !== '') {
    metrics = new NodeMetrics({ status: () => node.nodeStatus(), peers: () => transport.stats() });
    metricsServer = await serveMetrics(config.metricsAddress, metrics);
  }

  const shutdown = (why: string): Promise<void> => {
    shuttingDown ??= (async () => {
      log.info({ why }, 'shutting down');
      await api.close();
      await kafka?.close();
      await node.stop();
      await transport.close();
      metricsServer?.close();
      for (const c of clients.values()) c.close();
      log.info('stopped');
      log.flush();
    })();
    return shuttingDown;
  };

  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      void shutdown(signal).then(() => resolve(exitCode));
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
  });

  log.info({ api: config.apiAddress, peer: config.peerAddress, metrics: config.metricsAddress }, 'serving');
  console.log(
    `cairn serve: node ${config.nodeId} ready api=${config.apiAddress} peer=${config.peerAddress}` +
      (config.kafkaAddress ? ` kafka=${config.kafkaAdvertisedAddress || config.kafkaAddress}` : '') +
      (config.metricsAddress ? ` metrics=http://${config.metricsAddress}/metrics` : ''),
  );
  return done;
}
