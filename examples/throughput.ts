// How the producer's batching pays off, measured against a running cluster: appends of
// 100-byte records awaited one at a time (the baseline), then the same records appended
// concurrently (batched per partition), with LZ4, and without idempotence. It prints
// records/s and the ratio to the baseline, measured in the same run (the machine is noisy).
//
//   node dist/examples/throughput.js [--server 127.0.0.1:7001] [--records 20000]
import { parseArgs } from 'node:util';
import { CairnClient, type ClientOptions } from '../client/src/index.js';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: process.env['CAIRN_SERVER'] ?? '127.0.0.1:7001' },
    records: { type: 'string', default: '20000' },
  },
});
const n = Number(values.records);
const stream = `throughput-${Date.now()}`;
const value = new Uint8Array(100).fill(97);

async function run(label: string, options: Partial<ClientOptions>, concurrent: boolean, count: number) {
  const client = new CairnClient({ servers: values.server!, ...options });
  try {
    await client.append(stream, { value }, { partition: 0 }); // warm up: metadata, producer id
    const t0 = performance.now();
    if (concurrent) {
      await Promise.all(
        Array.from({ length: count }, () => client.append(stream, { value }, { partition: 0 })),
      );
    } else {
      for (let i = 0; i < count; i++) await client.append(stream, { value }, { partition: 0 });
    }
    const rate = count / ((performance.now() - t0) / 1000);
    return { label, rate };
  } finally {
    await client.close();
  }
}

const setup = new CairnClient({ servers: values.server! });
await setup.createStream(stream, { partitions: 1 });
await setup.close();
// The baseline sends far fewer records: one round trip and one fsync each.
const baseline = await run('one at a time (baseline)', {}, false, Math.max(100, Math.floor(n / 20)));
const rows = [
  baseline,
  await run('concurrent, batched', {}, true, n),
  await run('concurrent, batched, lz4', { compression: 'lz4' }, true, n),
  await run('concurrent, batched, not idempotent', { idempotent: false }, true, n),
];
for (const r of rows)
  console.log(
    `${r.label.padEnd(38)} ${Math.round(r.rate).toString().padStart(8)} records/s  ×${(r.rate / baseline.rate).toFixed(1)}`,
  );
