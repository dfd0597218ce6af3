// The index log (src/server/ixdelta.c, docs/indexing.md) under concurrent
// writes and queries, through @azure/cosmos 4.9.3. The server merges its
// index log into the index every 40 logged keys (--index-merge-keys 40), so
// hundreds of merges race with the queries. Whatever a query's snapshot, it
// must see every document acknowledged before it started and none twice:
// COUNT from the index, ORDER BY read from the index (both directions, paged
// across merges) and equality on a value that upserts keep changing.
import https from "node:https";
import { after, before, test } from "node:test";
import { CosmosClient } from "@azure/cosmos";
import { assert, rebuilt, shutdown, startWithClient, uid } from "./common.mjs";
import { startServer } from "../../lib/harness.mjs";

let ctx;
let database;
const ARGS = ["--index-merge-keys", "40"];

before(async () => {
  ctx = await startWithClient({ args: ARGS });
  ({ database } = await ctx.client.databases.createIfNotExists({ id: uid("ixlog-") }));
});
after(async () => {
  await shutdown(ctx);
});

async function all(iter) {
  const out = [];
  while (iter.hasMoreResults()) {
    const { resources } = await iter.fetchNext();
    out.push(...resources);
  }
  return out;
}

test("queries racing merges see every acknowledged document once", async () => {
  const { container } = await database.containers.createIfNotExists({ id: "race", partitionKey: { paths: ["/pk"] } });
  const N = 900;
  let issued = 0;
  const acked = new Set(); // n of acknowledged creates
  const version = new Map(); // n -> v of its last acknowledged write
  let writing = true;

  const writer = async (w) => {
    for (;;) {
      const n = issued++;
      if (n >= N) return;
      const d = { id: `d${n}`, pk: `p${n % 5}`, g: "all", n, v: n % 7, w };
      await container.items.create(d);
      acked.add(n);
      version.set(n, d.v);
      if (n % 3 === 0 && n > 10) {
        // change an older document's v: its old key leaves the index, a new one comes
        const m = n - 10;
        const v = (version.get(m) + 1) % 7;
        await container.items.upsert({ id: `d${m}`, pk: `p${m % 5}`, g: "all", n: m, v, w });
        version.set(m, v);
      }
    }
  };

  const failures = [];
  const reader = async (kind) => {
    let rounds = 0;
    while (writing || rounds < 2) {
      rounds++;
      const before = new Set(acked);
      if (kind === "count") {
        const { resources } = await container.items.query("SELECT VALUE COUNT(1) FROM c WHERE c.g = 'all'").fetchAll();
        const c = resources[0];
        const hi = issued;
        if (c < before.size || c > hi) failures.push(`count ${c} outside [${before.size}, ${hi}]`);
      } else if (kind === "asc" || kind === "desc") {
        const rows = await all(
          container.items.query(`SELECT c.n FROM c ORDER BY c.n ${kind.toUpperCase()}`, {
            maxItemCount: 97,
          }),
        );
        const ns = rows.map((r) => r.n);
        for (let i = 1; i < ns.length; i++) {
          if (kind === "asc" ? ns[i] <= ns[i - 1] : ns[i] >= ns[i - 1]) {
            failures.push(`${kind}: ${ns[i - 1]} then ${ns[i]}`);
            break;
          }
        }
        const got = new Set(ns);
        for (const n of before) {
          if (!got.has(n)) {
            failures.push(`${kind}: acknowledged ${n} missing (${ns.length} rows)`);
            break;
          }
        }
      } else {
        const rows = await all(container.items.query("SELECT c.n, c.v FROM c WHERE c.v = 3", { maxItemCount: 50 }));
        const ns = rows.map((r) => r.n);
        if (new Set(ns).size !== ns.length) failures.push(`v=3: a document twice`);
        for (const r of rows) if (r.v !== 3) failures.push(`v=3: got v=${r.v}`);
      }
    }
  };

  const writers = [0, 1, 2, 3].map(writer);
  const readers = ["count", "asc", "desc", "eq"].map(reader);
  await Promise.all(writers);
  writing = false;
  await Promise.all(readers);
  assert.deepEqual(failures.slice(0, 10), []);

  // settled: exact answers
  const count = (await container.items.query("SELECT VALUE COUNT(1) FROM c WHERE c.g = 'all'").fetchAll())
    .resources[0];
  assert.equal(count, N);
  const asc = (await container.items.query("SELECT VALUE c.n FROM c WHERE c.g = 'all' ORDER BY c.n").fetchAll())
    .resources;
  assert.deepEqual(asc, [...Array(N).keys()]);
  for (let v = 0; v < 7; v++) {
    const want = [...version].filter(([, x]) => x === v).map(([n]) => n).sort((a, b) => a - b);
    const got = (
      await container.items.query({
        query: "SELECT VALUE c.n FROM c WHERE c.v = @v",
        parameters: [{ name: "@v", value: v }],
      }).fetchAll()
    ).resources.sort((a, b) => a - b);
    assert.deepEqual(got, want, `v = ${v}`);
    // COUNT reads index entries only: a stale or doubled entry shows here
    const counted = (
      await container.items.query({
        query: "SELECT VALUE COUNT(1) FROM c WHERE c.v = @v",
        parameters: [{ name: "@v", value: v }],
      }).fetchAll()
    ).resources;
    assert.deepEqual(counted, [want.length], `COUNT v = ${v}`);
  }
});

test("entries still in the log survive a crash and a policy change", async () => {
  // a server of its own whose log is never merged by size
  const args = ["--index-merge-keys", "1000000"];
  let srv = await startServer({ args });
  const connect = (sv) =>
    new CosmosClient({ endpoint: sv.endpoint, key: sv.masterKey, agent: new https.Agent({ ca: sv.cert, keepAlive: true }) });
  let client = connect(srv);
  const { database: db } = await client.databases.createIfNotExists({ id: "logdb" });
  const { container } = await db.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/pk"] } });
  for (let i = 0; i < 60; i++) await container.items.create({ id: `x${i}`, pk: "p", k: i % 4, s: `s${i}` });
  await container.item("x5", "p").delete();
  const run = async (query) => {
    const r = await client.database("logdb").container("c").items.query(query, { populateQueryMetrics: true }).fetchAll();
    return r.resources;
  };
  const ids = async () => (await run("SELECT VALUE c.id FROM c WHERE c.k = 1")).sort();
  const want = [...Array(60).keys()].filter((i) => i % 4 === 1 && i !== 5).map((i) => `x${i}`).sort();
  assert.deepEqual(await ids(), want);
  // ORDER BY over more log entries than a query copies at a time (128), both
  // directions, unpaged and resumed from continuation tokens
  const ct0 = client.database("logdb").container("c");
  for (let k = 0; k < 300; k += 20) {
    await Promise.all([...Array(20).keys()].map((j) => ct0.items.create({ id: `o${k + j}`, pk: `q${(k + j) % 3}`, o: k + j })));
  }
  const ordered = async (dir, maxItemCount) =>
    all(ct0.items.query(`SELECT VALUE c.o FROM c WHERE c.o >= 10 ORDER BY c.o ${dir}`, { maxItemCount }));
  const up = [...Array(290).keys()].map((i) => i + 10);
  assert.deepEqual(await ordered("ASC", -1), up);
  assert.deepEqual(await ordered("ASC", 37), up);
  assert.deepEqual(await ordered("DESC", -1), [...up].reverse());
  assert.deepEqual(await ordered("DESC", 37), [...up].reverse());
  // SIGKILL: the log is all there is of these entries; it is read back at the next start
  client.dispose();
  await srv.stop({ signal: "SIGKILL" });
  srv = await startServer({ root: srv.root, args });
  client = connect(srv);
  assert.deepEqual(await ids(), want, "after a restart");
  assert.deepEqual(await run("SELECT VALUE COUNT(1) FROM c WHERE c.k = 1"), [want.length]);
  // a policy change rebuilds the index and merges the log at its end
  const ct = client.database("logdb").container("c");
  const { resource: def } = await ct.read();
  def.indexingPolicy = { indexingMode: "consistent", includedPaths: [{ path: "/k/?" }], excludedPaths: [{ path: "/*" }] };
  await ct.replace(def);
  await ct.items.create({ id: "x100", pk: "p", k: 1 });
  assert.equal(await rebuilt(ct), 100);
  await ct.items.create({ id: "x101", pk: "p", k: 1 });
  await ct.item("x9", "p").replace({ id: "x9", pk: "p", k: 2 });
  const now = [...want.filter((x) => x !== "x9"), "x100", "x101"].sort();
  assert.deepEqual(await ids(), now, "after a policy change");
  assert.deepEqual(await run("SELECT VALUE COUNT(1) FROM c WHERE c.k = 1"), [now.length]);
  client.dispose();
  const r = await srv.stop();
  assert.deepEqual({ code: r.code, sanitizer: r.sanitizer }, { code: 0, sanitizer: null });
  srv.cleanup();
});

test("writes during a background merge decide the entries they touch", async () => {
  // A merge reads and sorts the log on a thread of its own, then the writer
  // inserts what it read; an upsert in between records the same (key,
  // document) again in a later log row, and that row must decide it: the
  // merge leaves such entries out of the index. Upserts keep changing v and
  // gen of 40 documents while hundreds of merges run (one per 120 logged
  // keys); a stale entry shows as a COUNT above the truth, a lost one below
  // it.
  const args = ["--index-merge-keys", "120"];
  const connect = (sv) =>
    new CosmosClient({ endpoint: sv.endpoint, key: sv.masterKey, agent: new https.Agent({ ca: sv.cert, keepAlive: true }) });
  let srv = await startServer({ args });
  let client = connect(srv);
  try {
    const { database: db } = await client.databases.createIfNotExists({ id: "bgmerge" });
    const { container } = await db.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/pk"] } });
    const D = 40;
    const v = new Array(D).fill(0);
    for (let i = 0; i < D; i++) await container.items.create({ id: `u${i}`, pk: `p${i % 4}`, v: 0, gen: 0 });
    let ops = 0;
    const until = Date.now() + 3000;
    const loop = async (w) => {
      // loop w writes documents i with i % 8 == w: a document's writes are ordered
      for (let i = w; Date.now() < until; i = (i + 8) % D) {
        v[i] = (v[i] + 1) % 5;
        // gen: a value no later write brings back, so a stale entry stays
        await container.items.upsert({ id: `u${i}`, pk: `p${i % 4}`, v: v[i], gen: ++ops });
      }
    };
    await Promise.all([...Array(8).keys()].map(loop));
    assert.ok(ops > 300, `only ${ops} upserts`);
    const check = async (ct, when) => {
      const all = { query: "SELECT VALUE COUNT(1) FROM c WHERE c.gen >= 0" };
      assert.deepEqual((await ct.items.query(all).fetchAll()).resources, [D], `COUNT gen >= 0 ${when}`);
      for (let x = 0; x < 5; x++) {
        const want = [...v.keys()].filter((i) => v[i] === x).map((i) => `u${i}`).sort();
        const q = { query: "SELECT VALUE c.id FROM c WHERE c.v = @x", parameters: [{ name: "@x", value: x }] };
        const got = (await ct.items.query(q).fetchAll()).resources.sort();
        assert.deepEqual(got, want, `v = ${x} ${when}`);
        const n = { query: "SELECT VALUE COUNT(1) FROM c WHERE c.v = @x", parameters: [{ name: "@x", value: x }] };
        assert.deepEqual((await ct.items.query(n).fetchAll()).resources, [want.length], `COUNT v = ${x} ${when}`);
      }
    };
    await check(container, "with the log");
    // a clean stop merges the whole log: the index alone must hold the truth
    client.dispose();
    client = null;
    assert.equal((await srv.stop()).code, 0);
    srv = await startServer({ root: srv.root, args });
    client = connect(srv);
    await check(client.database("bgmerge").container("c"), "after a clean restart");
  } finally {
    if (client) client.dispose();
    const r = await srv.stop();
    srv.cleanup();
    assert.deepEqual({ code: r.code, sanitizer: r.sanitizer }, { code: 0, sanitizer: null });
  }
});
