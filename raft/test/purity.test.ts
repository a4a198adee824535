// DESIGN §1 and §5: raft/ is a pure, deterministic state machine. Its source may import
// only its own files, and may not touch the clock, randomness, timers or the process.

import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const srcDir = new URL('../../../raft/src/', import.meta.url);
const files = readdirSync(srcDir).filter((f) => f.endsWith('.ts'));

const FORBIDDEN: [RegExp, string][] = [
  [/['"]node:/, 'a node: import'],
  [/\bDate\.now\b|\bnew Date\b/, 'the clock'],
  [/\bperformance\.now\b/, 'the clock'],
  [/\bMath\.random\b/, 'unseeded randomness'],
  [/\bset(Timeout|Interval|Immediate)\b|\bqueueMicrotask\b/, 'a timer'],
  [/\bprocess\.|\brequire\(/, 'the process'],
];

test('raft/src has source files to check', () => {
  assert.ok(files.includes('raft.ts') && files.length >= 10, files.join(', '));
});

for (const f of files) {
  test(`raft/src/${f} is pure: no clock, randomness, timers, I/O, or imports from outside raft/src`, () => {
    const text = readFileSync(new URL(f, srcDir), 'utf8');
    for (const [re, what] of FORBIDDEN) assert.not.ok(re.test(text), `${f} uses ${what} (${re})`);
    for (const m of text.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g)) {
      assert.ok(m[1]!.startsWith('./'), `${f} imports ${m[1]}`);
    }
  });
}

test.run();
