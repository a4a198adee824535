import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, formatMembers, loadConfig, parseMembers } from '../src/config.js';

const members = '1=127.0.0.1:7001/127.0.0.1:7101,2=127.0.0.1:7002/127.0.0.1:7102';
const base = ['--node-id', '1', '--api-address', '127.0.0.1:7001', '--peer-address', '127.0.0.1:7101'];
const noFile = (p: string): string => {
  throw new Error(`no file ${p}`);
};

test('flags build a config; members parse and print back', () => {
  const c = loadConfig(
    [...base, '--members', members, '--data-dir', '/tmp/x', '--tick-ms', '20'],
    {},
    noFile,
  );
  assert.is(c.nodeId, 1);
  assert.is(c.dataDir, '/tmp/x');
  assert.is(c.raft.tickMs, 20);
  assert.is(c.members.length, 2);
  assert.is(formatMembers(c.members), members);
  assert.equal(parseMembers(members), c.members);
});

test('a single node without members is a one-node cluster of itself', () => {
  const c = loadConfig(base, {}, noFile);
  assert.equal(c.members, [{ id: 1, apiAddress: '127.0.0.1:7001', peerAddress: '127.0.0.1:7101' }]);
});

test('precedence: defaults < file < environment < flags', () => {
  const file = JSON.stringify({
    nodeId: 2,
    dataDir: '/from-file',
    limits: { maxStreams: 7 },
    raft: { tickMs: 30 },
  });
  const c = loadConfig(
    [
      '--config',
      'c.json',
      '--data-dir',
      '/from-flag',
      '--api-address',
      '127.0.0.1:7002',
      '--peer-address',
      '127.0.0.1:7102',
    ],
    { CAIRN_DATA_DIR: '/from-env', CAIRN_MAX_STREAMS: '9', CAIRN_MEMBERS: members },
    (p) => (p === 'c.json' ? file : noFile(p)),
  );
  assert.is(c.nodeId, 2, 'from the file');
  assert.is(c.dataDir, '/from-flag');
  assert.is(c.limits.maxStreams, 9, 'environment over file');
  assert.is(c.raft.tickMs, 30);
  assert.is(c.limits.maxRecordBytes, 1024 * 1024, 'default kept');
});

test('bad settings are refused with a message naming them', () => {
  const bad: [string[], Record<string, string>, RegExp][] = [
    [['--node-id', '0'], {}, /nodeId/],
    [['--node-id', 'x'], {}, /not an integer/],
    [[...base, '--api-address', 'nohost'], {}, /apiAddress/],
    [[...base, '--members', '2=127.0.0.1:7002/127.0.0.1:7102'], {}, /not in members/],
    [[...base, '--members', '1=127.0.0.1:9/127.0.0.1:7101'], {}, /other addresses/],
    [[...base, '--members', '1=a:1/b:2,1=a:1/b:2'], {}, /listed twice/],
    [[...base, '--members', 'garbage'], {}, /ID=API_ADDRESS/],
    [[...base, '--join'], {}, /join needs members/],
    [[...base, '--bogus'], {}, /Unknown option/],
    [base, { CAIRN_MAX_RECORD_BYTES: '-1' }, /maxRecordBytes/],
    [base, { CAIRN_HEARTBEAT_TICKS: '50' }, /heartbeatTicks/],
    [base, { CAIRN_JOIN: 'maybe' }, /not a boolean/],
    [[...base, '--log-level', 'loud'], {}, /logLevel/],
    [[...base, '--config', 'x.json'], {}, /config file x.json/],
  ];
  for (const [argv, env, why] of bad) {
    try {
      loadConfig(argv, env, (p) => (p === 'x.json' ? '{"nope": 1}' : noFile(p)));
      assert.unreachable(`accepted ${argv.join(' ')} ${JSON.stringify(env)}`);
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.match((err as Error).message, why);
    }
  }
});

test.run();
