// Debug helper: opens one group's store the way the node does and prints what it found.
import { createCore } from '../../../core-wasm/src/index.js';
import { segmentStores } from '../../src/group/segment-store.js';
import { silentLogger } from '../../src/ops/log.js';
import { NodeFileSystem } from '../../src/storage/index.js';

const [dir, group] = process.argv.slice(2);
const stores = segmentStores({ fs: new NodeFileSystem(), dataDir: dir!, core: createCore(), schedule: (f) => setImmediate(f), log: silentLogger() });
const { store, opened } = await stores.open(Number(group));
console.log(JSON.stringify({ first: store.firstIndex(), last: store.lastIndex(), hs: opened.hardState, lost: opened.lostEntries }));
await store.close();
