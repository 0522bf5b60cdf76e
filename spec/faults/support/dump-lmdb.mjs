// Prints every record of a knit state dir's embedded store as one JSON object {key: value}, opened read-only.
// A separate process: the store's native module stays out of jest, and knit may keep running meanwhile.
import { open } from 'lmdb';

const path = process.argv[2];
if (!path) {
  console.error('usage: node dump-lmdb.mjs STATE_DIR/db');
  process.exit(2);
}
const root = open({ path, readOnly: true, maxDbs: 3 });
// LocalStore keeps [value, revision, lease?] in the "kv" database, keyed by the key's bytes.
const kv = root.openDB({ name: 'kv', encoding: 'json', keyEncoding: 'binary' });
const out = {};
for (const { key, value } of kv.getRange({})) out[key.toString()] = value[0];
process.stdout.write(JSON.stringify(out));
await root.close();
