// Feeds and queries through @azure/cosmos 4.9.3: readAll, SELECT *, equality
// with parameters, paging with maxItemCount, single- and cross-partition.
import { after, before, test } from "node:test";
import { assert, allPages, shutdown, startWithClient, uid } from "./common.mjs";

let ctx;
let container;
const N = 23; // items, over 3 partition keys
const docs = [];
before(async () => {
  ctx = await startWithClient();
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  ({ container } = await database.containers.createIfNotExists({ id: "q", partitionKey: { paths: ["/pk"] } }));
  for (let i = 0; i < N; i++) {
    const d = { id: `item-${String(i).padStart(2, "0")}`, pk: `p${i % 3}`, x: i % 5, name: `n${i}`, flag: i % 2 === 0 };
    docs.push(d);
    await container.items.create(d);
  }
});
after(async () => {
  await shutdown(ctx);
});

const ids = (rs) => rs.map((r) => r.id).sort();
const expectIds = (pred) => docs.filter(pred).map((d) => d.id).sort();

test("readAll returns every item once, with system properties", async () => {
  const { resources } = await container.items.readAll().fetchAll();
  assert.deepEqual(ids(resources), expectIds(() => true));
  for (const r of resources) {
    for (const p of ["_rid", "_self", "_etag", "_ts", "_attachments"]) assert.ok(r[p] !== undefined, `${r.id} lacks ${p}`);
  }
});

test("SELECT * FROM c across partitions", async () => {
  const { resources } = await container.items.query("SELECT * FROM c").fetchAll();
  assert.deepEqual(ids(resources), expectIds(() => true));
  const full = resources.find((r) => r.id === "item-07");
  assert.equal(full.name, "n7");
  assert.equal(full.x, 2);
});

test("SELECT * FROM c in one partition (partitionKey option)", async () => {
  const { resources } = await container.items.query("SELECT * FROM c", { partitionKey: "p1" }).fetchAll();
  assert.deepEqual(ids(resources), expectIds((d) => d.pk === "p1"));
});

test("WHERE c.x = @v with parameters: numbers, strings, booleans; no match is an empty result", async () => {
  const q = (v, opts) =>
    container.items.query({ query: "SELECT * FROM c WHERE c.x = @v", parameters: [{ name: "@v", value: v }] }, opts).fetchAll();
  assert.deepEqual(ids((await q(3)).resources), expectIds((d) => d.x === 3));
  assert.deepEqual(ids((await q(3, { partitionKey: "p0" })).resources), expectIds((d) => d.x === 3 && d.pk === "p0"));
  assert.deepEqual((await q(99)).resources, []);
  assert.deepEqual((await q("3")).resources, [], "string '3' must not equal number 3");

  const byName = await container.items
    .query({ query: "SELECT * FROM c WHERE c.name = @n", parameters: [{ name: "@n", value: "n11" }] })
    .fetchAll();
  assert.deepEqual(ids(byName.resources), ["item-11"]);
  const byFlag = await container.items
    .query({ query: "SELECT * FROM c WHERE c.flag = @f", parameters: [{ name: "@f", value: true }] })
    .fetchAll();
  assert.deepEqual(ids(byFlag.resources), expectIds((d) => d.flag === true));
  const byId = await container.items
    .query({ query: "SELECT * FROM c WHERE c.id = @id", parameters: [{ name: "@id", value: "item-05" }] })
    .fetchAll();
  assert.deepEqual(ids(byId.resources), ["item-05"]);
});

test("WHERE with a literal value and a string containing quotes", async () => {
  await container.items.create({ id: "quoted", pk: "p0", name: "it's \"q\"" });
  try {
    const lit = await container.items.query("SELECT * FROM c WHERE c.x = 4").fetchAll();
    assert.deepEqual(ids(lit.resources), expectIds((d) => d.x === 4));
    const q = await container.items
      .query({ query: "SELECT * FROM c WHERE c.name = @n", parameters: [{ name: "@n", value: "it's \"q\"" }] })
      .fetchAll();
    assert.deepEqual(ids(q.resources), ["quoted"]);
  } finally {
    await container.item("quoted", "p0").delete();
  }
});

test("paging: maxItemCount 4, fetchNext until done, every item exactly once (cross-partition)", async () => {
  const it = container.items.query("SELECT * FROM c", { maxItemCount: 4 });
  const pages = await allPages(it, 4);
  const seen = pages.flat().map((r) => r.id);
  assert.equal(seen.length, N, `saw ${seen.length} items, want ${N}`);
  assert.deepEqual([...seen].sort(), expectIds(() => true));
  assert.ok(pages.length >= Math.ceil(N / 4), `only ${pages.length} pages for ${N} items at 4 per page`);
});

test("paging: maxItemCount 2 within one partition, every item exactly once", async () => {
  const it = container.items.query("SELECT * FROM c", { maxItemCount: 2, partitionKey: "p2" });
  const pages = await allPages(it, 2);
  const seen = pages.flat().map((r) => r.id);
  const want = expectIds((d) => d.pk === "p2");
  assert.equal(seen.length, want.length);
  assert.deepEqual([...seen].sort(), want);
  assert.ok(pages.length >= Math.ceil(want.length / 2));
});

test("paging: readAll with maxItemCount 5, every item exactly once", async () => {
  const pages = await allPages(container.items.readAll({ maxItemCount: 5 }), 5);
  const seen = pages.flat().map((r) => r.id);
  assert.equal(seen.length, N);
  assert.deepEqual([...seen].sort(), expectIds(() => true));
});

test("paging a filtered query: maxItemCount 1, every match exactly once", async () => {
  const it = container.items.query(
    { query: "SELECT * FROM c WHERE c.x = @v", parameters: [{ name: "@v", value: 1 }] },
    { maxItemCount: 1 }
  );
  const seen = (await allPages(it, 1)).flat().map((r) => r.id);
  assert.deepEqual([...seen].sort(), expectIds((d) => d.x === 1));
  assert.equal(new Set(seen).size, seen.length, "an item came twice");
});

test("query results follow writes: new, replaced and deleted items", async () => {
  await container.items.create({ id: "late", pk: "p1", x: 42 });
  let r = await container.items.query("SELECT * FROM c WHERE c.x = 42").fetchAll();
  assert.deepEqual(ids(r.resources), ["late"]);
  await container.item("late", "p1").replace({ id: "late", pk: "p1", x: 43 });
  r = await container.items.query("SELECT * FROM c WHERE c.x = 42").fetchAll();
  assert.deepEqual(r.resources, []);
  await container.item("late", "p1").delete();
  r = await container.items.query("SELECT * FROM c WHERE c.x = 43").fetchAll();
  assert.deepEqual(r.resources, []);
});

test("an empty container answers queries and readAll with no items", async () => {
  const { container: empty } = await container.database.containers.createIfNotExists({
    id: uid("empty-"),
    partitionKey: { paths: ["/pk"] },
  });
  assert.deepEqual((await empty.items.readAll().fetchAll()).resources, []);
  assert.deepEqual((await empty.items.query("SELECT * FROM c").fetchAll()).resources, []);
  assert.deepEqual((await empty.items.query("SELECT * FROM c", { partitionKey: "p" }).fetchAll()).resources, []);
});
