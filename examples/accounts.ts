// An event-sourced account service. The events (opened, deposited, withdrawn) are the
// truth, stored in a Cairn stream; an account's partition is chosen by its id. A command
// is decided against the state folded from the events up to some offset, and its event is
// appended with `expectedOffset` = that offset: if another instance appended in between,
// the append fails with EXPECTED_OFFSET_MISMATCH, the instance folds the new events and
// decides again. So any number of instances can serve the same accounts and no decision
// is ever made on stale state: a withdrawal never overdraws an account.
//
//   node dist/examples/accounts.js [--server 127.0.0.1:7001] demo
//   node dist/examples/accounts.js open ACCOUNT | deposit ACCOUNT N | withdraw ACCOUNT N | balance ACCOUNT
import { parseArgs } from 'node:util';
import { CairnClient, CairnClientError } from '../client/src/index.js';

export type AccountEvent =
  | { type: 'opened'; account: string }
  | { type: 'deposited'; account: string; amount: number }
  | { type: 'withdrawn'; account: string; amount: number };

export type Command =
  | { type: 'open'; account: string }
  | { type: 'deposit'; account: string; amount: number }
  | { type: 'withdraw'; account: string; amount: number };

/** A command the state refuses (not a failure of the service). */
export class Rejected extends Error {}

/** The folded state of one partition: the balance of each open account. */
interface PartitionView {
  /** Every event below this offset is folded in. */
  position: number;
  balances: Map<string, number>;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The fold. Events were checked when they were decided, so applying never refuses. */
export function applyEvent(balances: Map<string, number>, e: AccountEvent): void {
  switch (e.type) {
    case 'opened':
      balances.set(e.account, 0);
      break;
    case 'deposited':
      balances.set(e.account, (balances.get(e.account) ?? 0) + e.amount);
      break;
    case 'withdrawn':
      balances.set(e.account, (balances.get(e.account) ?? 0) - e.amount);
      break;
  }
}

/** The decision: the event a command makes, given the current balances, or Rejected. */
export function decide(balances: Map<string, number>, c: Command): AccountEvent {
  const balance = balances.get(c.account);
  switch (c.type) {
    case 'open':
      if (balance !== undefined) throw new Rejected(`account ${c.account} is already open`);
      return { type: 'opened', account: c.account };
    case 'deposit':
      if (balance === undefined) throw new Rejected(`account ${c.account} is not open`);
      if (!(c.amount > 0)) throw new Rejected('a deposit must be positive');
      return { type: 'deposited', account: c.account, amount: c.amount };
    case 'withdraw':
      if (balance === undefined) throw new Rejected(`account ${c.account} is not open`);
      if (!(c.amount > 0)) throw new Rejected('a withdrawal must be positive');
      if (c.amount > balance)
        throw new Rejected(`account ${c.account} holds ${balance}, cannot withdraw ${c.amount}`);
      return { type: 'withdrawn', account: c.account, amount: c.amount };
  }
}

/** Conflicting attempts per command before giving up (each one folds newer events first). */
const MAX_ATTEMPTS = 50;

export class AccountService {
  private readonly views = new Map<number, PartitionView>();
  /** How many appends lost a race (EXPECTED_OFFSET_MISMATCH) and were decided again. */
  conflicts = 0;

  constructor(
    readonly client: CairnClient,
    readonly stream = 'accounts',
  ) {}

  /**
   * Folds the partition's events from the view's position up to `until` (default: the end
   * of the partition now, as its leader says).
   */
  private async catchUp(partition: number, until?: number): Promise<PartitionView> {
    let v = this.views.get(partition);
    if (v === undefined) this.views.set(partition, (v = { position: 0, balances: new Map() }));
    const end = until ?? (await this.client.offsets(this.stream, partition)).highWatermark;
    while (v.position < end) {
      // A replica that has not caught up yet answers with less: the long poll waits for it.
      const r = await this.client.read(this.stream, partition, { offset: v.position, maxWaitMs: 1_000 });
      for (const rec of r.records)
        applyEvent(v.balances, JSON.parse(fromUtf8.decode(rec.value!)) as AccountEvent);
      v.position = Math.max(v.position, r.nextOffset);
    }
    return v;
  }

  /** Decides and appends a command's event; resolves with the event once it is committed. */
  async execute(c: Command): Promise<AccountEvent> {
    const partition = await this.client.partitionFor(this.stream, c.account);
    let v = this.views.get(partition) ?? (await this.catchUp(partition));
    let fresh = false;
    for (let attempt = 1; ; attempt++) {
      let event: AccountEvent;
      try {
        event = decide(v.balances, c);
      } catch (err) {
        // A refusal must hold on current state: the cached view may miss other instances'
        // events (an append made on stale state fails on its own, by expectedOffset).
        if (!(err instanceof Rejected) || fresh) throw err;
        v = await this.catchUp(partition);
        fresh = true;
        continue;
      }
      try {
        const at = await this.client.append(
          this.stream,
          { key: c.account, value: utf8.encode(JSON.stringify(event)) },
          { partition, expectedOffset: v.position },
        );
        // Our own event is the next one: fold it and move past it.
        applyEvent(v.balances, event);
        v.position = at.offset + 1;
        return event;
      } catch (err) {
        if (
          !(err instanceof CairnClientError && err.code === 'EXPECTED_OFFSET_MISMATCH') ||
          attempt >= MAX_ATTEMPTS
        )
          throw err;
        this.conflicts++;
        // Someone appended first: fold up to the actual end, then decide again.
        v = await this.catchUp(partition, err.facts.actualOffset);
        fresh = true;
      }
    }
  }

  async balance(account: string): Promise<number | undefined> {
    const partition = await this.client.partitionFor(this.stream, account);
    return (await this.catchUp(partition)).balances.get(account);
  }
}

async function demo(servers: string): Promise<void> {
  const stream = `accounts-demo-${Date.now()}`;
  const setup = new CairnClient({ servers });
  await setup.createStream(stream, { partitions: 2 });
  // Two instances of the service, each with its own client, serving the same accounts.
  const a = new AccountService(new CairnClient({ servers }), stream);
  const b = new AccountService(new CairnClient({ servers }), stream);
  const accounts = ['alice', 'bob', 'carol'];
  for (const acc of accounts) {
    await a.execute({ type: 'open', account: acc });
    await a.execute({ type: 'deposit', account: acc, amount: 100 });
  }
  let refused = 0;
  const run = async (s: AccountService) => {
    for (let i = 0; i < 40; i++) {
      const account = accounts[i % accounts.length]!;
      await s.execute({ type: 'withdraw', account, amount: 7 }).catch((e: unknown) => {
        if (!(e instanceof Rejected)) throw e;
        refused++;
      });
    }
  };
  await Promise.all([run(a), run(b)]);
  for (const acc of accounts) console.log(`${acc}: ${await b.balance(acc)}`);
  console.log(
    `conflicts resolved: ${a.conflicts + b.conflicts}; withdrawals refused (no overdraft): ${refused}`,
  );
  await Promise.all([a.client.close(), b.client.close(), setup.close()]);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      server: { type: 'string', default: process.env['CAIRN_SERVER'] ?? '127.0.0.1:7001' },
      stream: { type: 'string', default: 'accounts' },
    },
    allowPositionals: true,
  });
  const [cmd, account, amount] = positionals;
  if (cmd === 'demo') return demo(values.server);
  const client = new CairnClient({ servers: values.server });
  try {
    await client.createStream(values.stream, { partitions: 4 }).catch((err: unknown) => {
      if (!(err instanceof CairnClientError && err.code === 'STREAM_EXISTS')) throw err;
    });
    const s = new AccountService(client, values.stream);
    if (account === undefined)
      throw new Error('usage: accounts.js demo | open|deposit|withdraw|balance ACCOUNT [N]');
    if (cmd === 'balance') console.log((await s.balance(account)) ?? 'no such account');
    else if (cmd === 'open') console.log(await s.execute({ type: 'open', account }));
    else if (cmd === 'deposit' || cmd === 'withdraw')
      console.log(await s.execute({ type: cmd, account, amount: Number(amount) }));
    else throw new Error(`unknown command '${cmd}'`);
  } finally {
    await client.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  main().catch((err: unknown) => {
    console.error(`accounts: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
