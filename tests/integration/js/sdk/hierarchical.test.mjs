// Hierarchical partition keys (kind MultiHash, up to three paths) through
// @azure/cosmos 4.9.3: point operations need the whole key; queries and the
// change feed take a prefix of it (the first one or two components) and
// see exactly the documents under that prefix. The SDK sends a prefix as
// the partition key header for queries and as a range of effective
// partition keys (x-ms-start-epk/x-ms-end-epk) for the change feed, so
// both ways are covered. Expected results are computed here from the data.
import { test } from "node:test";
import { ChangeFeedStartFrom, PartitionKeyKind, StatusCodes } from "@azure/cosmos";
import { assert, expectCode, serverWithDatabase, uid } from "./common.mjs";

const env = serverWithDatabase();

// Tenant, user, session: "a" and "ab" share a string prefix but are
// different keys; numbers and a missing (undefined) component too.
const DOCS = [
  { id: "1", t: "a", u: "x", s: 1, v: 5 },
  { id: "2", t: "a", u: "x", s: 2, v: 3 },
  { id: "3", t: "a", u: "y", s: 1, v: 9 },
  { id: "4", t: "ab", u: "x", s: 1, v: 1 },
  { id: "5", t: "b", u: "x", s: 1, v: 7 },
  { id: "1", t: "b", u: "y", s: 3, v: 2 }, // same id, another key
  { id: "6", t: "a", v: 4 }, // u and s undefined
  { id: "7", t: 10, u: "x", s: 1, v: 6 },
];
const key = (d) => [d.t, d.u, d.s];

async function newContainer() {
  const { container } = await env.database.containers.createIfNotExists({
    id: uid("h-"),
    partitionKey: { paths: ["/t", "/u", "/s"], version: 2, kind: PartitionKeyKind.MultiHash },
  });
  for (const d of DOCS) await container.items.create(d);
  return container;
}

function under(prefix) {
  return DOCS.filter((d) => prefix.every((p, i) => key(d)[i] === p));
}

async function ids(iter) {
  const out = [];
  while (iter.hasMoreResults()) out.push(...(await iter.fetchNext()).resources);
  return out;
}

test("point operations address one document by its whole key", async () => {
  const c = await newContainer();
  const { resource: def } = await c.read();
  assert.deepEqual(def.partitionKey.paths, ["/t", "/u", "/s"]);
  assert.equal(def.partitionKey.kind, "MultiHash");
  assert.equal((await c.item("1", ["a", "x", 1]).read()).resource.v, 5);
  assert.equal((await c.item("1", ["b", "y", 3]).read()).resource.v, 2);
  assert.equal((await c.item("1", ["a", "x", 2]).read()).statusCode, StatusCodes.NotFound);
  assert.equal((await c.item("6", ["a", undefined, undefined]).read()).resource.v, 4);
  await expectCode(() => c.items.create({ id: "2", t: "a", u: "x", s: 2 }), 409, "same id and key");
  // a prefix names many documents, not one
  await expectCode(() => c.item("1", ["a", "x"]).read(), 400, "read with a prefix");
  const p = await c.item("2", ["a", "x", 2]).patch([{ op: "incr", path: "/v", value: 10 }]);
  assert.equal(p.resource.v, 13);
  await c.item("2", ["a", "x", 2]).replace({ id: "2", t: "a", u: "x", s: 2, v: 3 });
  await c.item("5", ["b", "x", 1]).delete();
  assert.equal((await c.item("5", ["b", "x", 1]).read()).statusCode, StatusCodes.NotFound);
  await c.items.create(DOCS.find((d) => d.id === "5"));
});

test("queries with a prefix see exactly the documents under it, at every page size", async () => {
  const c = await newContainer();
  const prefixes = [["a"], ["a", "x"], ["a", "x", 1], ["ab"], ["b"], [10], [10, "x"], ["zz"]];
  for (const prefix of prefixes) {
    const want = under(prefix);
    for (const maxItemCount of [1, 3, undefined]) {
      const got = await ids(c.items.query("SELECT VALUE c.id FROM c", { partitionKey: prefix, maxItemCount }));
      assert.deepEqual(got.sort(), want.map((d) => d.id).sort(), `prefix ${JSON.stringify(prefix)}`);
    }
    const ordered = await ids(
      c.items.query("SELECT VALUE c.v FROM c ORDER BY c.v DESC", { partitionKey: prefix, maxItemCount: 2 }),
    );
    assert.deepEqual(ordered, want.map((d) => d.v).sort((x, y) => y - x), `ORDER BY ${JSON.stringify(prefix)}`);
    const { resources: count } = await c.items
      .query("SELECT VALUE COUNT(1) FROM c", { partitionKey: prefix })
      .fetchAll();
    assert.deepEqual(count, [want.length], `COUNT ${JSON.stringify(prefix)}`);
    const { resources: filtered } = await c.items
      .query({ query: "SELECT VALUE c.id FROM c WHERE c.v > @v", parameters: [{ name: "@v", value: 3 }] }, {
        partitionKey: prefix,
      })
      .fetchAll();
    assert.deepEqual(filtered.sort(), want.filter((d) => d.v > 3).map((d) => d.id).sort());
  }
  // without a key: every document, across partitions
  const all = await ids(c.items.query("SELECT VALUE c.id FROM c WHERE c.v >= 0", { maxItemCount: 3 }));
  assert.equal(all.length, DOCS.length);
});

async function drainFeed(it) {
  const items = [];
  for (let guard = 0; guard < 100; guard++) {
    const r = await it.readNext();
    if (r.statusCode === StatusCodes.NotModified) break;
    items.push(...r.result);
  }
  return items;
}

test("the change feed of a prefix holds only its documents, in change order", async () => {
  const c = await newContainer();
  await c.item("3", ["a", "y", 1]).patch([{ op: "set", path: "/v", value: 10 }]);
  await c.item("4", ["ab", "x", 1]).patch([{ op: "set", path: "/v", value: 11 }]);
  const changed = ["3"]; // under "a": created in DOCS order, then 3 again
  for (const prefix of [["a"], ["a", "x"], ["ab"], [10], ["a", "y", 1], ["nobody"]]) {
    const it = c.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning(prefix),
      maxItemCount: 2,
    });
    const items = await drainFeed(it);
    const want = under(prefix).map((d) => d.id);
    const moved = want.filter((id) => prefix[0] === "a" && changed.includes(id));
    const wantOrder = [...want.filter((id) => !moved.includes(id)), ...moved];
    if (prefix[0] === "ab") assert.deepEqual(items.map((d) => d.v), [11]);
    assert.deepEqual(items.map((d) => d.id), wantOrder, `change feed of ${JSON.stringify(prefix)}`);
  }
  // the whole container through its one feed range
  const ranges = await c.getFeedRanges();
  assert.equal(ranges.length, 1);
  const everything = await drainFeed(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(ranges[0]) }),
  );
  assert.equal(everything.length, DOCS.length);
});
