// Items (documents) through @azure/cosmos 4.9.3: CRUD, conditional requests,
// partition key types, id rules, size limit, system properties.
import { after, before, test } from "node:test";
import { assert, expectCode, shutdown, startWithClient, uid } from "./common.mjs";

let ctx;
let container;
before(async () => {
  ctx = await startWithClient();
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  ({ container } = await database.containers.createIfNotExists({
    id: "items",
    partitionKey: { paths: ["/pk"] },
  }));
});
after(async () => {
  await shutdown(ctx);
});

test("create (201, etag header) then read (200) returns the document with system properties", async () => {
  const doc = { id: uid("d-"), pk: "p1", name: "Ada", nested: { list: [1, 2, { x: true }] }, n: 12.5, nul: null };
  const c = await container.items.create(doc);
  assert.equal(c.statusCode, 201);
  assert.ok(c.etag, "no etag header on create");
  assert.equal(c.resource._etag, c.etag, "etag header differs from _etag");

  const r = await container.item(doc.id, "p1").read();
  assert.equal(r.statusCode, 200);
  for (const [k, v] of Object.entries(doc)) assert.deepEqual(r.resource[k], v, `field ${k}`);
  assert.equal(typeof r.resource._rid, "string");
  assert.ok(r.resource._rid.length > 0);
  assert.equal(typeof r.resource._self, "string");
  assert.ok(r.resource._self.length > 0);
  assert.equal(typeof r.resource._etag, "string");
  assert.equal(typeof r.resource._attachments, "string");
  assert.equal(typeof r.resource._ts, "number");
  const now = Date.now() / 1000;
  assert.ok(Math.abs(r.resource._ts - now) < 600, `_ts ${r.resource._ts} is not seconds since the epoch`);
  assert.equal(r.etag, r.resource._etag);
});

test("read of a missing item is 404", async () => {
  const r = await container.item(uid("missing-"), "p1").read();
  assert.equal(r.statusCode, 404);
  assert.equal(r.resource, undefined);
});

test("replace (200) changes the etag; delete (204); then 404", async () => {
  const id = uid("d-");
  const c = await container.items.create({ id, pk: "p1", v: 1 });
  const rep = await container.item(id, "p1").replace({ id, pk: "p1", v: 2 });
  assert.equal(rep.statusCode, 200);
  assert.equal(rep.resource.v, 2);
  assert.notEqual(rep.etag, c.etag, "etag did not change on replace");
  const r = await container.item(id, "p1").read();
  assert.equal(r.resource.v, 2);

  const d = await container.item(id, "p1").delete();
  assert.equal(d.statusCode, 204);
  assert.equal((await container.item(id, "p1").read()).statusCode, 404);
  await expectCode(() => container.item(id, "p1").delete(), 404, "delete of a deleted item");
  await expectCode(() => container.item(id, "p1").replace({ id, pk: "p1", v: 3 }), 404, "replace of a missing item");
});

test("upsert: 201 when new, 200 when it replaces", async () => {
  const id = uid("u-");
  const a = await container.items.upsert({ id, pk: "p1", v: 1 });
  assert.equal(a.statusCode, 201);
  const b = await container.items.upsert({ id, pk: "p1", v: 2 });
  assert.equal(b.statusCode, 200);
  assert.equal((await container.item(id, "p1").read()).resource.v, 2);
});

test("409 on a duplicate id in the same partition key; the same id in another partition key is fine", async () => {
  const id = uid("dup-");
  await container.items.create({ id, pk: "a" });
  await expectCode(() => container.items.create({ id, pk: "a", other: 1 }), 409, "duplicate id in one partition");
  const other = await container.items.create({ id, pk: "b" });
  assert.equal(other.statusCode, 201);
  assert.equal((await container.item(id, "a").read()).resource.pk, "a");
  assert.equal((await container.item(id, "b").read()).resource.pk, "b");
  // The failed create did not overwrite the original.
  assert.equal((await container.item(id, "a").read()).resource.other, undefined);
});

test("If-Match: replace and delete with a stale etag are 412; with the current etag they succeed", async () => {
  const id = uid("e-");
  const v1 = await container.items.create({ id, pk: "p1", v: 1 });
  const v2 = await container.item(id, "p1").replace({ id, pk: "p1", v: 2 });
  await expectCode(
    () =>
      container.item(id, "p1").replace({ id, pk: "p1", v: 3 }, { accessCondition: { type: "IfMatch", condition: v1.etag } }),
    412,
    "replace with a stale etag"
  );
  await expectCode(
    () => container.item(id, "p1").delete({ accessCondition: { type: "IfMatch", condition: v1.etag } }),
    412,
    "delete with a stale etag"
  );
  assert.equal((await container.item(id, "p1").read()).resource.v, 2, "a 412 replace changed the item");
  const ok = await container
    .item(id, "p1")
    .replace({ id, pk: "p1", v: 3 }, { accessCondition: { type: "IfMatch", condition: v2.etag } });
  assert.equal(ok.statusCode, 200);
  const del = await container.item(id, "p1").delete({ accessCondition: { type: "IfMatch", condition: ok.etag } });
  assert.equal(del.statusCode, 204);
});

test("If-None-Match on read: 304 for the current etag, 200 with the item for another", async () => {
  const id = uid("n-");
  const c = await container.items.create({ id, pk: "p1", v: 1 });
  const same = await container.item(id, "p1").read({ accessCondition: { type: "IfNoneMatch", condition: c.etag } });
  assert.equal(same.statusCode, 304);
  const changed = await container.item(id, "p1").replace({ id, pk: "p1", v: 2 });
  const r = await container.item(id, "p1").read({ accessCondition: { type: "IfNoneMatch", condition: c.etag } });
  assert.equal(r.statusCode, 200);
  assert.equal(r.resource.v, 2);
  assert.equal(r.etag, changed.etag);
});

test("partition key values: non-ASCII strings, numbers, booleans, null and a missing key are distinct keys", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const { container: c } = await database.containers.createIfNotExists({ id: "pks", partitionKey: { paths: ["/pk"] } });
  const cases = [
    ["ö", { pk: "ö" }],
    ["日本語 ✓ 😀", { pk: "日本語 ✓ 😀" }],
    [5, { pk: 5 }],
    ["5", { pk: "5" }],
    [-3.25, { pk: -3.25 }],
    [true, { pk: true }],
    [false, { pk: false }],
    [null, { pk: null }],
    [undefined, {}], // missing key: the SDK sends [{}]
  ];
  for (const [pkv, extra] of cases) {
    const r = await c.items.create({ id: "same", ...extra, tag: JSON.stringify(pkv ?? "missing") });
    assert.equal(r.statusCode, 201, `create with partition key ${JSON.stringify(pkv)}`);
  }
  for (const [pkv] of cases) {
    const r = await c.item("same", pkv).read();
    assert.equal(r.statusCode, 200, `read with partition key ${JSON.stringify(pkv)}`);
    assert.equal(r.resource.tag, JSON.stringify(pkv ?? "missing"), `partition key ${JSON.stringify(pkv)} read another item`);
  }
  // Every key value is a query partition of its own.
  for (const [pkv] of cases.filter(([v]) => v !== undefined)) {
    const { resources } = await c.items.query("SELECT * FROM c", { partitionKey: pkv }).fetchAll();
    assert.equal(resources.length, 1, `query in partition ${JSON.stringify(pkv)} found ${resources.length}`);
  }
  const { resources: all } = await c.items.readAll().fetchAll();
  assert.equal(all.length, cases.length);
  // Delete with the missing key.
  assert.equal((await c.item("same", undefined).delete()).statusCode, 204);
  assert.equal((await c.item("same", undefined).read()).statusCode, 404);
});

test("id rules: '?' is rejected with 400 (the SDK itself refuses '/', '\\\\' and '#'); 256 characters 400, 255 fine", async () => {
  await expectCode(() => container.items.create({ id: "a?b", pk: "p1" }), 400, "id with '?'");
  await expectCode(() => container.items.upsert({ id: "c?d", pk: "p1" }), 400, "upsert with id with '?'");
  await expectCode(() => container.items.create({ id: "x".repeat(256), pk: "p1" }), 400, "256-character id");
  const long = "y".repeat(255);
  const r = await container.items.create({ id: long, pk: "p1" });
  assert.equal(r.statusCode, 201);
  assert.equal((await container.item(long, "p1").read()).resource.id, long);
  // Ids with characters that need escaping in a URL still round-trip.
  for (const id of ["with space", "ümlaut-é", "plus+sign", "semi;colon", "quote'\"", "a&b=c"]) {
    const c = await container.items.create({ id, pk: "p1" });
    assert.equal(c.statusCode, 201, `create id ${JSON.stringify(id)}`);
    const g = await container.item(id, "p1").read();
    assert.equal(g.statusCode, 200, `read id ${JSON.stringify(id)}`);
    assert.equal(g.resource.id, id);
    assert.equal((await container.item(id, "p1").delete()).statusCode, 204, `delete id ${JSON.stringify(id)}`);
  }
});

test("a document over 2 MB is refused with 413; 1.5 MB is stored", async () => {
  const big = { id: uid("big-"), pk: "p1", blob: "b".repeat(2 * 1024 * 1024 + 1024) };
  await expectCode(() => container.items.create(big), 413, "create of a 2 MB+ document");
  await expectCode(() => container.items.upsert(big), 413, "upsert of a 2 MB+ document");
  assert.equal((await container.item(big.id, "p1").read()).statusCode, 404);

  const ok = { id: uid("ok-"), pk: "p1", blob: "o".repeat(1536 * 1024) };
  assert.equal((await container.items.create(ok)).statusCode, 201);
  const back = await container.item(ok.id, "p1").read();
  assert.equal(back.resource.blob.length, ok.blob.length);
  await expectCode(
    () => container.item(ok.id, "p1").replace({ ...ok, blob: big.blob }),
    413,
    "replace with a 2 MB+ document"
  );
});

test("a unique key violation within a partition is 409; the same value in another partition is fine", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const { container: c } = await database.containers.createIfNotExists({
    id: "uniq",
    partitionKey: { paths: ["/pk"] },
    uniqueKeyPolicy: { uniqueKeys: [{ paths: ["/email"] }] },
  });
  await c.items.create({ id: "1", pk: "t1", email: "a@example.com" });
  await expectCode(() => c.items.create({ id: "2", pk: "t1", email: "a@example.com" }), 409, "unique key violation on create");
  await c.items.create({ id: "3", pk: "t1", email: "b@example.com" });
  await expectCode(
    () => c.item("3", "t1").replace({ id: "3", pk: "t1", email: "a@example.com" }),
    409,
    "unique key violation on replace"
  );
  await expectCode(() => c.items.upsert({ id: "4", pk: "t1", email: "a@example.com" }), 409, "unique key violation on upsert");
  assert.equal((await c.items.create({ id: "2", pk: "t2", email: "a@example.com" })).statusCode, 201);
  // Freed value can be taken again.
  await c.item("1", "t1").delete();
  assert.equal((await c.items.create({ id: "5", pk: "t1", email: "a@example.com" })).statusCode, 201);
});

test("deleteAllItemsForPartitionKey: every document of that key goes (1,230 of them, in batches); the others stay", async () => {
  const db = ctx.client.database(container.database.id);
  const { container: c } = await db.containers.create({
    id: uid("pkdel-"),
    partitionKey: { paths: ["/pk"] },
    uniqueKeyPolicy: { uniqueKeys: [{ paths: ["/email"] }] },
  });
  const ops = [];
  for (let i = 0; i < 1230; i++)
    ops.push({ operationType: "Create", resourceBody: { id: `b${i}`, pk: "big", email: `u${i}@x`, n: i } });
  for (let i = 0; i < ops.length; i += 100) {
    const res = await c.items.bulk(ops.slice(i, i + 100));
    assert.ok(res.every((r) => r.statusCode === 201), "bulk create");
  }
  for (let i = 0; i < 5; i++) await c.items.create({ id: `s${i}`, pk: "small", email: `s${i}@x`, n: i });
  await c.items.create({ id: "b0", pk: "other", email: "o@x", n: -1 }); // same id, other key

  const r = await c.deleteAllItemsForPartitionKey("big");
  assert.equal(r.statusCode, 200);
  const { resources: left } = await c.items.query("SELECT VALUE c.pk FROM c").fetchAll();
  assert.deepEqual(left.sort(), ["other", "small", "small", "small", "small", "small"]);
  const count = async (pk) =>
    (await c.items.query({ query: "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @p", parameters: [{ name: "@p", value: pk }] })
      .fetchAll()).resources[0];
  assert.equal(await count("big"), 0, "the index still counts deleted documents");
  assert.equal((await c.items.query("SELECT * FROM c WHERE c.n >= 0 AND c.pk = 'big'").fetchAll()).resources.length, 0);
  assert.equal((await c.item("b7", "big").read()).statusCode, 404, "a deleted document reads");
  assert.equal((await c.item("b0", "other").read()).resource.n, -1);
  // the deleted documents' unique key values are free again
  assert.equal((await c.items.create({ id: "b1", pk: "big", email: "u1@x" })).statusCode, 201);
  // a key with no documents: nothing to do
  assert.equal((await c.deleteAllItemsForPartitionKey("nothing")).statusCode, 200);
  // the partition key is required; an unknown container is 404
  await expectCode(() => c.deleteAllItemsForPartitionKey(undefined), 400, "no partition key");
  await expectCode(() => db.container(uid("none-")).deleteAllItemsForPartitionKey("big"), 404, "unknown container");
  await c.delete();
});
