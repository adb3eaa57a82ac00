// LanceDB (@lancedb/lancedb, pinned in package-lock.json) next to ragmap's
// object mode: the same vectors, on the same local S3 server, the same
// queries, recall@10 against the same exact answers.
//
//   node bench.mjs LISTS.BIN LISTS.IDX QUERIES.RMQX TEXTS.TSV [NLIST]
//
// LISTS.BIN / LISTS.IDX: a ragmap IVF segment's lists (every vector with its
// chunk id; see src/index/segment.h). QUERIES.RMQX: `ragmap bench search
// --export` (query vectors and their exact top 10). TEXTS.TSV: chunk id, tab,
// its text, a row a line: the table's "text" column, which every query
// returns with the id, as ragmap's answers carry their texts. Needs AWS_ENDPOINT_URL
// and the credentials (the local Ceph RGW's). The table goes under s3://rag/lancedb-bench/ through a
// counting HTTP proxy in this process, so storage requests per query are
// counted the way ragmap counts its own: every request the query makes.
// Latency is timed on a second connection straight to the server, so the
// proxy's hop is not in it.
//
// Prints: build time, then per nprobes: recall@10, cold latency (first query
// after opening the table), warm p50/p95 and requests/bytes per warm query.
import http from "node:http";
import fs from "node:fs";
import * as lancedb from "@lancedb/lancedb";

const [listsBin, listsIdx, queriesFile, textsFile, nlistArg] = process.argv.slice(2);
if (!listsBin || !listsIdx || !queriesFile || !textsFile || !process.env.AWS_ENDPOINT_URL) {
  console.error("usage: AWS_ENDPOINT_URL=... node bench.mjs LISTS.BIN LISTS.IDX QUERIES.RMQX TEXTS.TSV [NLIST]");
  process.exit(2);
}
const upstream = new URL(process.env.AWS_ENDPOINT_URL);

// ---- a counting proxy in front of the S3 server
const count = { requests: 0, bytes: 0 };
const proxy = http.createServer((req, res) => {
  count.requests++;
  const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method,
                            path: req.url, headers: req.headers }, (ur) => {
    res.writeHead(ur.statusCode, ur.headers);
    ur.on("data", (c) => { count.bytes += c.length; });
    ur.pipe(res);
  });
  up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
  req.on("data", (c) => { count.bytes += c.length; });
  req.pipe(up);
});
await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
const endpoint = `http://127.0.0.1:${proxy.address().port}`;
const storageOptions = { aws_access_key_id: process.env.AWS_ACCESS_KEY_ID,
                         aws_secret_access_key: process.env.AWS_SECRET_ACCESS_KEY,
                         aws_endpoint: endpoint, aws_region: "us-east-1", allow_http: "true" };
const direct = { ...storageOptions, aws_endpoint: upstream.origin };
const uri = "s3://rag/lancedb-bench";

// ---- the vectors, from ragmap's lists
const idx = fs.readFileSync(listsIdx);
if (idx.toString("latin1", 0, 4) !== "RMLI") throw new Error("not a lists.idx");
const dims = idx.readUInt32LE(8), nlist = idx.readUInt32LE(12), hasC = idx.readUInt32LE(16);
const offAt = 20 + (hasC ? nlist * dims * 4 : 0);
const offsets = [];
for (let i = 0; i <= nlist; i++) offsets.push(Number(idx.readBigUInt64LE(offAt + 8 * i)));
const bin = fs.readFileSync(listsBin);
let total = 0;
for (let l = 0; l < nlist; l++) total += offsets[l + 1] > offsets[l] ? bin.readUInt32LE(offsets[l]) : 0;
const ids = new BigInt64Array(total), vecs = new Float32Array(total * dims);
{
  let at = 0;
  for (let l = 0; l < nlist; l++) {
    const o = offsets[l];
    if (offsets[l + 1] === o) continue;
    const n = bin.readUInt32LE(o);
    for (let i = 0; i < n; i++) ids[at + i] = bin.readBigInt64LE(o + 4 + 8 * i);
    const v = o + 4 + 8 * n;
    vecs.set(new Float32Array(bin.buffer.slice(bin.byteOffset + v, bin.byteOffset + v + n * dims * 4)), at * dims);
    at += n;
  }
}
const texts = new Map();
for (const line of fs.readFileSync(textsFile, "utf8").split("\n")) {
  const tab = line.indexOf("\t");
  if (tab > 0) texts.set(BigInt(line.slice(0, tab)), line.slice(tab + 1));
}
for (let i = 0; i < total; i++)
  if (!texts.has(ids[i])) throw new Error(`${textsFile}: no text for chunk ${ids[i]}`);
console.log(`vectors: ${total} x ${dims} from ${nlist} lists, with their texts`);

// ---- queries and their exact answers
const qx = fs.readFileSync(queriesFile);
if (qx.toString("latin1", 0, 4) !== "RMQX" || qx.readUInt32LE(4) !== dims) throw new Error("bad queries file");
const k = qx.readUInt32LE(8), nq = qx.readUInt32LE(12);
const queries = [], exact = [];
for (let i = 0, o = 16; i < nq; i++) {
  queries.push(Array.from(new Float32Array(qx.buffer.slice(qx.byteOffset + o, qx.byteOffset + o + dims * 4))));
  o += dims * 4;
  const e = [];
  for (let j = 0; j < k; j++, o += 8) e.push(qx.readBigInt64LE(o));
  exact.push(e);
}

// ---- build the table and an IVF_FLAT index like ragmap's (dot product, same nlist)
function batch(from, to) {
  const rows = [];
  for (let i = from; i < to; i++)
    rows.push({ id: Number(ids[i]), vector: vecs.subarray(i * dims, (i + 1) * dims), text: texts.get(ids[i]) });
  return rows;
}
let t0 = Date.now();
const db = await lancedb.connect(uri, { storageOptions });
const step = 100000;
let tbl = await db.createTable("v", batch(0, Math.min(step, total)), { mode: "overwrite" });
for (let f = step; f < total; f += step) await tbl.add(batch(f, Math.min(f + step, total)));
const tLoad = Date.now() - t0;
t0 = Date.now();
const parts = Number(nlistArg || nlist);
await tbl.createIndex("vector", { config: lancedb.Index.ivfFlat({ numPartitions: parts, distanceType: "dot" }) });
const tIndex = Date.now() - t0;
console.log(`table: ${total} rows written in ${(tLoad / 1e3).toFixed(1)} s, IVF_FLAT (${parts} partitions, dot) in ${(tIndex / 1e3).toFixed(1)} s`);

async function ask(table, q, nprobes) {
  return table.query().nearestTo(q).distanceType("dot").nprobes(nprobes).limit(k).select(["id", "text", "_distance"]).toArray();
}
function recallOf(res, e) {
  const got = new Set(res.map((r) => BigInt(r.id)));
  let hit = 0, have = 0;
  for (const x of e) if (x >= 0n) { have++; if (got.has(x)) hit++; }
  return have ? hit / have : null;
}
const pct = (a, p) => a.slice().sort((x, y) => x - y)[Math.max(0, Math.ceil(p * a.length) - 1)];

console.log("\n| LanceDB nprobes | recall@10 | cold ms (open + first query) | cold requests | warm p50 ms | warm p95 ms | warm requests/query | warm KiB/query |");
console.log("|---|---|---|---|---|---|---|---|");
for (const nprobes of (process.env.NPROBES || "1,2,4,8,12,16,24,32").split(",").map(Number)) {
  // Timed on a connection straight to the store, counted on one through the
  // proxy: the proxy's hop would otherwise be in LanceDB's latency.
  // cold: a new connection, open the table, one query
  let t = performance.now();
  const cdb = await lancedb.connect(uri, { storageOptions: direct });
  const ctbl = await cdb.openTable("v");
  await ask(ctbl, queries[0], nprobes);
  const coldMs = performance.now() - t;
  count.requests = 0; count.bytes = 0;
  const pdb = await lancedb.connect(uri, { storageOptions });
  const ptbl = await pdb.openTable("v");
  await ask(ptbl, queries[0], nprobes);
  const coldReq = count.requests;
  // warm: every query on the open table, one at a time
  const lat = [];
  let rsum = 0, rn = 0;
  for (let i = 0; i < nq; i++) {
    t = performance.now();
    const res = await ask(ctbl, queries[i], nprobes);
    lat.push(performance.now() - t);
    const r = recallOf(res, exact[i]);
    if (r !== null) { rsum += r; rn++; }
  }
  count.requests = 0; count.bytes = 0;
  for (let i = 0; i < nq; i++) await ask(ptbl, queries[i], nprobes);
  console.log(`| ${nprobes} | ${(rsum / rn).toFixed(4)} | ${coldMs.toFixed(1)} | ${coldReq} | ${pct(lat, 0.5).toFixed(2)} | ${pct(lat, 0.95).toFixed(2)} | ${(count.requests / nq).toFixed(2)} | ${(count.bytes / nq / 1024).toFixed(1)} |`);
  for (const x of [ctbl, cdb, ptbl, pdb]) x.close?.();
}
proxy.close();
process.exit(0);
