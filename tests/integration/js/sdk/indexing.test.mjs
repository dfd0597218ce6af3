// Automatic indexing through @azure/cosmos 4.9.3: the index serves queries
// (query metrics show how many documents were read), follows writes,
// replaces and deletes, honours the policy (excluded paths, indexingMode
// none, composite indexes for multi-field ORDER BY, automatic: false with
// the per-write indexing directive), and is rebuilt online when the policy
// is replaced, with the progress header reaching 100.
import { after, before, test } from "node:test";
import { assert, rebuilt, shutdown, startWithClient, uid } from "./common.mjs";

let ctx;
let database;
const N = 300;
const docOf = (i) => ({ id: `d${i}`, pk: `p${i % 4}`, n: i, s: `name${String(i).padStart(3, "0")}`, tags: [`t${i % 7}`, "all"] });

before(async () => {
  ctx = await startWithClient();
  ({ database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") }));
});
after(async () => {
  await shutdown(ctx);
});

async function filled(id, indexingPolicy) {
  const { container } = await database.containers.create({ id, partitionKey: { paths: ["/pk"] }, indexingPolicy });
  const ops = [];
  for (let i = 0; i < N; i++) ops.push({ operationType: "Create", resourceBody: docOf(i) });
  for (let i = 0; i < N; i += 100) {
    const res = await container.items.bulk(ops.slice(i, i + 100));
    for (const r of res) assert.equal(r.statusCode, 201);
  }
  return container;
}

// Result rows and the number of documents the server read for them.
async function run(container, query, opts = {}) {
  const it = container.items.query(query, { populateQueryMetrics: true, ...opts });
  let rows = [];
  let retrieved = 0;
  while (it.hasMoreResults()) {
    const page = await it.fetchNext();
    rows = rows.concat(page.resources);
    for (const m of Object.values(page.queryMetrics || {})) retrieved += m.retrievedDocumentCount;
  }
  return { rows, retrieved };
}

test("the default policy indexes every path: equality, range, ORDER BY, STARTSWITH, ARRAY_CONTAINS read few documents", async () => {
  const c = await filled("idx", undefined);
  let r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 7");
  assert.deepEqual(r.rows, ["d7"]);
  assert.equal(r.retrieved, 1);

  r = await run(c, { query: "SELECT VALUE c.n FROM c WHERE c.n > @lo ORDER BY c.n DESC", parameters: [{ name: "@lo", value: 290 }] });
  assert.deepEqual(r.rows, [299, 298, 297, 296, 295, 294, 293, 292, 291]);
  assert.equal(r.retrieved, 9);

  r = await run(c, "SELECT TOP 3 VALUE c.n FROM c WHERE c.n >= 100 ORDER BY c.n");
  assert.deepEqual(r.rows, [100, 101, 102]);
  assert.ok(r.retrieved <= 3, `TOP 3 over an ordered index read ${r.retrieved} documents`);

  r = await run(c, "SELECT VALUE c.id FROM c WHERE STARTSWITH(c.s, 'name29')");
  assert.deepEqual(r.rows.sort(), ["d290", "d291", "d292", "d293", "d294", "d295", "d296", "d297", "d298", "d299"]);
  assert.equal(r.retrieved, 10);

  r = await run(c, "SELECT VALUE c.n FROM c WHERE ARRAY_CONTAINS(c.tags, 't3') AND c.n < 30");
  assert.deepEqual(r.rows.sort((a, b) => a - b), [3, 10, 17, 24]);
  assert.ok(r.retrieved <= 43, `ARRAY_CONTAINS read ${r.retrieved} documents`);

  r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n IN (5, 50, 500)");
  assert.deepEqual(r.rows.sort(), ["d5", "d50"]);
  assert.equal(r.retrieved, 2);

  // single partition: the partition key header restricts what is read
  r = await run(c, "SELECT VALUE c.n FROM c WHERE c.n < 10", { partitionKey: "p1" });
  assert.deepEqual(r.rows.sort((a, b) => a - b), [1, 5, 9]);

  // writes keep the index exact: replace moves the entry, delete removes it
  await c.item("d7", "p3").replace({ ...docOf(7), n: 1007 });
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 7")).rows, []);
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 1007")).rows, ["d7"]);
  await c.items.upsert({ ...docOf(8), n: 2008 });
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 8")).rows, []);
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 2008")).rows, ["d8"]);
  await c.item("d9", "p1").patch([{ op: "set", path: "/n", value: 3009 }]);
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 3009")).rows, ["d9"]);
  await c.item("d9", "p1").delete();
  assert.deepEqual((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 3009")).rows, []);
  // _ts is indexed as Cosmos does; a COUNT whose whole filter is one
  // index range is counted in the index: no document is read
  r = await run(c, "SELECT VALUE COUNT(1) FROM c WHERE c._ts > 0");
  assert.deepEqual(r.rows, [N - 1]);
  assert.equal(r.retrieved, 0);
  r = await run(c, "SELECT VALUE COUNT(1) FROM c WHERE c.n >= 100 AND c.n < 200");
  assert.deepEqual(r.rows, [100]);
  assert.equal(r.retrieved, 0);
  r = await run(c, "SELECT VALUE COUNT(1) FROM c WHERE c.n IN (5, 5.0, 6, 'x')");
  assert.deepEqual(r.rows, [2]);
  assert.equal(r.retrieved, 0);
  // not one exact range: counted from the documents, the same answers
  r = await run(c, "SELECT VALUE COUNT(1) FROM c WHERE c.n >= 100 AND STARTSWITH(c.s, 'name1')");
  assert.deepEqual(r.rows, [100]);
  assert.ok(r.retrieved > 0);
  r = await run(c, "SELECT VALUE COUNT(1) FROM c WHERE c.n < 10", { partitionKey: "p1" });
  assert.deepEqual(r.rows, [2]); // d1, d5 (d9 was deleted above)
});

test("ORDER BY one path without a condition reads the index in order when every document has the path", async () => {
  const c = await filled("ordered", undefined);
  let r = await run(c, "SELECT TOP 3 VALUE c.n FROM c ORDER BY c.n DESC");
  assert.deepEqual(r.rows, [299, 298, 297]);
  assert.ok(r.retrieved <= 3, `TOP 3 read ${r.retrieved} documents`);
  r = await run(c, "SELECT VALUE c.n FROM c ORDER BY c.n", { maxItemCount: 64 });
  assert.deepEqual(r.rows, Array.from({ length: N }, (_, i) => i));
  // one document without n, one with an array there: they sort first
  // (undefined) and last (arrays after numbers); the index cannot place them,
  // so the server sorts, with the same answer
  await c.items.create({ id: "no-n", pk: "p0" });
  await c.items.create({ id: "arr-n", pk: "p0", n: [1] });
  r = await run(c, "SELECT TOP 2 VALUE c.id FROM c ORDER BY c.n");
  assert.deepEqual(r.rows, ["no-n", "d0"]);
  r = await run(c, "SELECT TOP 2 VALUE c.id FROM c ORDER BY c.n DESC");
  assert.deepEqual(r.rows, ["arr-n", "d299"]);
});

test("SELECT * read in order from a range that is exactly WHERE returns whole documents, as a scan does", async () => {
  const c = await filled("whole", undefined);
  const none = await filled("whole-none", { indexingMode: "none", automatic: false });
  // values at n that a numeric range must leave out, and one it must keep
  const odd = [
    { id: "str", pk: "p0", n: "295" },
    { id: "arr", pk: "p1", n: [295] },
    { id: "bool", pk: "p2", n: true },
    { id: "missing", pk: "p3" },
    { id: "frac", pk: "p0", n: 295.5, s: "x".repeat(400), deep: { a: [1, { b: "é" }] } },
  ];
  for (const d of odd) {
    await c.items.create(d);
    await none.items.create(d);
  }
  const strip = (d) => Object.fromEntries(Object.entries(d).filter(([k]) => !k.startsWith("_")));
  const inRange = (lo, hi) => [...Array(N).keys()].filter((i) => i > lo && i < hi).map(docOf);
  const cases = [
    ["SELECT * FROM c WHERE c.n > 290 ORDER BY c.n", [...inRange(290, 295.5), odd[4], ...inRange(295.5, 1e9)]],
    ["SELECT TOP 4 * FROM c WHERE c.n >= 100 AND c.n < 200 ORDER BY c.n DESC", inRange(195, 200).reverse()],
    ["SELECT * FROM c WHERE c.n BETWEEN 5 AND 7 ORDER BY c.n", inRange(4, 8)],
    ["SELECT * FROM c WHERE c.s >= 'name297' ORDER BY c.s", [...inRange(296, 300), odd[4]]],
    // not one exact range: the documents are read and WHERE evaluated
    ["SELECT * FROM c WHERE c.n > 280 AND CONTAINS(c.s, '9') ORDER BY c.n", inRange(280, 300).filter((d) => d.s.includes("9"))],
  ];
  for (const [query, want] of cases) {
    for (const maxItemCount of [1, 3, undefined]) {
      const got = (await run(c, query, { maxItemCount })).rows;
      assert.deepEqual(got.map(strip), want, `${query} (page ${maxItemCount})`);
      const scanned = (await run(none, query, { maxItemCount })).rows;
      assert.deepEqual(got.map(strip), scanned.map(strip), `${query}: index and scan differ`);
    }
    // each row is the stored document, system properties and all
    for (const row of (await run(c, query)).rows) {
      const { resource } = await c.item(row.id, row.pk).read();
      assert.deepEqual(row, resource);
    }
  }
  // an exact range with TOP reads only the documents it returns
  const r = await run(c, "SELECT TOP 3 * FROM c WHERE c.n >= 10 ORDER BY c.n");
  assert.deepEqual(r.rows.map((d) => d.id), ["d10", "d11", "d12"]);
  assert.ok(r.retrieved <= 3, `TOP 3 read ${r.retrieved} documents`);
});

test("indexingMode none and excluded paths: same results from a scan; ORDER BY on an excluded path is refused", async () => {
  const none = await filled("none", { indexingMode: "none", automatic: false });
  let r = await run(none, "SELECT VALUE c.id FROM c WHERE c.n = 7");
  assert.deepEqual(r.rows, ["d7"]);
  assert.equal(r.retrieved, N, "without an index every document is read");

  const ex = await filled("excl", { includedPaths: [{ path: "/*" }], excludedPaths: [{ path: "/n/?" }] });
  r = await run(ex, "SELECT VALUE c.id FROM c WHERE c.n = 7");
  assert.deepEqual(r.rows, ["d7"]);
  assert.equal(r.retrieved, N);
  r = await run(ex, "SELECT VALUE c.id FROM c WHERE c.s = 'name007'");
  assert.deepEqual(r.rows, ["d7"]);
  assert.equal(r.retrieved, 1, "other paths are still indexed");
  await assert.rejects(run(ex, "SELECT * FROM c ORDER BY c.n"), (e) => e.code === 400);
});

test("ORDER BY over two fields needs a composite index, and uses it", async () => {
  const plain = await filled("nocomp", undefined);
  await assert.rejects(run(plain, "SELECT * FROM c ORDER BY c.pk, c.n DESC"), (e) => {
    assert.equal(e.code, 400);
    assert.match(e.message, /composite index/);
    return true;
  });
  const comp = await filled("comp", {
    includedPaths: [{ path: "/*" }],
    compositeIndexes: [[{ path: "/pk", order: "ascending" }, { path: "/n", order: "descending" }]],
  });
  const want = Array.from({ length: N }, (_, i) => docOf(i))
    .sort((a, b) => (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : b.n - a.n))
    .map((d) => d.id);
  let r = await run(comp, "SELECT VALUE c.id FROM c ORDER BY c.pk, c.n DESC", { maxItemCount: 37 });
  assert.deepEqual(r.rows, want);
  r = await run(comp, "SELECT VALUE c.id FROM c ORDER BY c.pk DESC, c.n ASC", { maxItemCount: 50 });
  assert.deepEqual(r.rows, [...want].reverse());
  r = await run(comp, "SELECT TOP 5 VALUE c.id FROM c ORDER BY c.pk, c.n DESC");
  assert.deepEqual(r.rows, want.slice(0, 5));
  assert.ok(r.retrieved <= 5, `TOP 5 read ${r.retrieved} documents`);
});

test("replacing the policy rebuilds the index online; progress reaches 100 and queries use it", async () => {
  const c = await filled("switch", { indexingMode: "none", automatic: false });
  const before = await run(c, "SELECT VALUE c.id FROM c WHERE c.n >= 100 AND c.n < 110");
  assert.equal(before.retrieved, N);
  const { resource: def } = await c.read();
  def.indexingPolicy = { indexingMode: "consistent", automatic: true, includedPaths: [{ path: "/*" }], excludedPaths: [] };
  await c.replace(def);
  // writes during the rebuild are indexed too
  await c.items.create({ id: "late", pk: "p0", n: 105.5, s: "late", tags: [] });
  assert.equal(await rebuilt(c), 100);
  const { resource: now } = await c.read();
  assert.equal(now.indexingPolicy.indexingMode, "consistent");
  const afterRebuild = await run(c, "SELECT VALUE c.id FROM c WHERE c.n >= 100 AND c.n < 110");
  assert.deepEqual(afterRebuild.rows.sort(), [...before.rows, "late"].sort());
  assert.equal(afterRebuild.retrieved, 11);
  // and back to none: scans again, same answers
  now.indexingPolicy = { indexingMode: "none", automatic: false };
  await c.replace(now);
  const scanned = await run(c, "SELECT VALUE c.id FROM c WHERE c.n >= 100 AND c.n < 110");
  assert.deepEqual(scanned.rows.sort(), afterRebuild.rows.sort());
  assert.equal(scanned.retrieved, N + 1);
});

test("a query paged while the policy changes (its plan with it) still returns every row once, in order", async () => {
  const c = await filled("flip", undefined);
  const q = "SELECT VALUE c.n FROM c WHERE c.n >= 10 ORDER BY c.n DESC";
  const want = Array.from({ length: N - 10 }, (_, i) => N - 1 - i);
  const it = c.items.query(q, { maxItemCount: 40 });
  let got = (await it.fetchNext()).resources; // read from the index in order
  const { resource: def } = await c.read();
  def.indexingPolicy = { indexingMode: "none", automatic: false };
  await c.replace(def); // now a scan and a sort
  got = got.concat((await it.fetchNext()).resources);
  def.indexingPolicy = { indexingMode: "consistent", automatic: true, includedPaths: [{ path: "/*" }] };
  await c.replace(def); // and back (the rebuild may or may not be done)
  while (it.hasMoreResults()) got = got.concat((await it.fetchNext()).resources);
  assert.deepEqual(got, want);
});

test("an invalid indexing policy is refused with 400 and changes nothing", async () => {
  await assert.rejects(
    database.containers.create({ id: "bad", partitionKey: { paths: ["/pk"] }, indexingPolicy: { includedPaths: [{ path: "/n" }] } }),
    (e) => e.code === 400,
  );
  const c = await filled("keep", undefined);
  const { resource: def } = await c.read();
  const bad = { ...def, indexingPolicy: { includedPaths: [{ path: "no-slash/?" }] } };
  await assert.rejects(c.replace(bad), (e) => e.code === 400);
  const { resource: still } = await c.read();
  assert.deepEqual(still.indexingPolicy, def.indexingPolicy);
  assert.equal((await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 3")).retrieved, 1);
});

test("x-ms-indexing-directive and automatic: false: unindexed documents are read by id, never found by queries", async () => {
  // automatic (the default): Exclude keeps one document out of the index
  const c = await filled("directive", undefined);
  await c.items.create({ id: "hidden", pk: "p0", n: 7, s: "name007" }, { indexingDirective: "Exclude" });
  let r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 7");
  assert.deepEqual(r.rows, ["d7"], "an equality through the index does not see it");
  r = await run(c, "SELECT VALUE c.id FROM c WHERE c.s = 'name007' AND LENGTH(c.id) > 0");
  assert.deepEqual(r.rows, ["d7"]);
  r = await run(c, "SELECT VALUE COUNT(1) FROM c");
  assert.deepEqual(r.rows, [N], "COUNT does not count it");
  r = await run(c, "SELECT VALUE c.id FROM c WHERE ENDSWITH(c.id, 'dden')"); // a scan
  assert.deepEqual(r.rows, [], "a scan does not see it either");
  const { resource } = await c.item("hidden", "p0").read();
  assert.equal(resource.n, 7, "it is stored and read by id");
  // a replace without the directive indexes it again; an upsert with Exclude hides it
  await c.item("hidden", "p0").replace({ id: "hidden", pk: "p0", n: 7 });
  r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 7 ORDER BY c.id");
  assert.deepEqual(r.rows, ["d7", "hidden"]);
  await c.items.upsert({ id: "hidden", pk: "p0", n: 7 }, { indexingDirective: "Exclude" });
  r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 7");
  assert.deepEqual(r.rows, ["d7"]);
  // a patch keeps it out
  await c.item("hidden", "p0").patch([{ op: "set", path: "/n", value: 8 }]);
  r = await run(c, "SELECT VALUE c.id FROM c WHERE c.n = 8");
  assert.deepEqual(r.rows, ["d8"]);

  // automatic: false: only documents written with Include are indexed
  const { container: m } = await database.containers.create({
    id: "manual", partitionKey: { paths: ["/pk"] },
    indexingPolicy: { indexingMode: "consistent", automatic: false, includedPaths: [{ path: "/*" }], excludedPaths: [] },
  });
  await m.items.create({ id: "a", pk: "x", v: 1 });
  await m.items.create({ id: "b", pk: "x", v: 1 }, { indexingDirective: "Include" });
  r = await run(m, "SELECT VALUE c.id FROM m c WHERE c.v = 1");
  assert.deepEqual(r.rows, ["b"]);
  assert.equal((await m.item("a", "x").read()).resource.v, 1);

  // a bad directive is a 400 and writes nothing
  const bad = await c.items.create({ id: "bad", pk: "p0" }, { indexingDirective: "Sometimes" }).catch((e) => e);
  assert.equal(bad.code, 400);
  assert.equal((await c.item("bad", "p0").read()).statusCode, 404);
});
