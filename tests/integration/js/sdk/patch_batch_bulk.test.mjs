// Partial document update (patch), transactional batch and bulk through
// @azure/cosmos 4.9.3.
import { after, before, test } from "node:test";
import { assert, expectCode, shutdown, startWithClient, uid } from "./common.mjs";

let ctx;
let container;
before(async () => {
  ctx = await startWithClient();
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  ({ container } = await database.containers.createIfNotExists({ id: "pbb", partitionKey: { paths: ["/pk"] } }));
});
after(async () => {
  await shutdown(ctx);
});

test("patch: add, set, replace, remove, incr, move", async () => {
  const id = uid("p-");
  const c = await container.items.create({ id, pk: "p", a: 1, b: { c: "x" }, arr: [1, 2], gone: true, n: 10, f: 1.5, from: "moved" });
  const r = await container.item(id, "p").patch([
    { op: "add", path: "/added", value: "new" },
    { op: "add", path: "/arr/1", value: 9 }, // insert into an array
    { op: "add", path: "/arr/-", value: 3 }, // append
    { op: "set", path: "/b/c", value: "y" },
    { op: "set", path: "/b/d", value: [true] },
    { op: "replace", path: "/a", value: { deep: 2 } },
    { op: "remove", path: "/gone" },
    { op: "incr", path: "/n", value: 5 },
    { op: "incr", path: "/f", value: -0.5 },
    { op: "move", from: "/from", path: "/to" },
  ]);
  assert.equal(r.statusCode, 200);
  assert.notEqual(r.etag, c.etag, "patch did not change the etag");
  const { resource: d } = await container.item(id, "p").read();
  assert.equal(d.added, "new");
  assert.deepEqual(d.arr, [1, 9, 2, 3]);
  assert.deepEqual(d.b, { c: "y", d: [true] });
  assert.deepEqual(d.a, { deep: 2 });
  assert.ok(!("gone" in d), "remove left the field");
  assert.equal(d.n, 15);
  assert.equal(d.f, 1);
  assert.ok(!("from" in d), "move left the source");
  assert.equal(d.to, "moved");
  assert.deepEqual(r.resource.arr, d.arr, "patch response body differs from the stored item");
});

test("patch: conditional patch applies when the condition holds, 412 when it does not", async () => {
  const id = uid("cp-");
  await container.items.create({ id, pk: "p", state: "open", n: 0 });
  const ok = await container.item(id, "p").patch({
    condition: "FROM c WHERE c.state = 'open'",
    operations: [{ op: "incr", path: "/n", value: 1 }],
  });
  assert.equal(ok.statusCode, 200);
  await expectCode(
    () =>
      container.item(id, "p").patch({
        condition: "FROM c WHERE c.state = 'closed'",
        operations: [{ op: "incr", path: "/n", value: 1 }],
      }),
    412,
    "conditional patch with a false condition"
  );
  assert.equal((await container.item(id, "p").read()).resource.n, 1, "a failed conditional patch changed the item");
});

test("patch: stale If-Match is 412; missing item is 404; replace or remove of a missing path is 400 and changes nothing", async () => {
  const id = uid("pe-");
  const v1 = await container.items.create({ id, pk: "p", n: 1 });
  await container.item(id, "p").patch([{ op: "set", path: "/n", value: 2 }]);
  await expectCode(
    () => container.item(id, "p").patch([{ op: "set", path: "/n", value: 3 }], { accessCondition: { type: "IfMatch", condition: v1.etag } }),
    412,
    "patch with a stale etag"
  );
  await expectCode(() => container.item(uid("nope-"), "p").patch([{ op: "set", path: "/n", value: 1 }]), 404, "patch of a missing item");
  await expectCode(
    () => container.item(id, "p").patch([{ op: "set", path: "/n", value: 9 }, { op: "replace", path: "/missing", value: 1 }]),
    400,
    "replace of a missing path"
  );
  await expectCode(() => container.item(id, "p").patch([{ op: "remove", path: "/missing" }]), 400, "remove of a missing path");
  await expectCode(
    () => container.item(id, "p").patch([{ op: "set", path: "/s", value: "x" }, { op: "incr", path: "/s", value: 1 }]),
    400,
    "incr of a string"
  );
  assert.equal((await container.item(id, "p").read()).resource.n, 2, "a failed patch changed the item");
});

test("batch: create, upsert, read, replace, patch, delete in one partition all succeed", async () => {
  const pk = uid("bp-");
  await container.items.create({ id: "old", pk, v: 0 });
  await container.items.create({ id: "del", pk });
  const res = await container.items.batch(
    [
      { operationType: "Create", resourceBody: { id: "b1", pk, v: 1 } },
      { operationType: "Upsert", resourceBody: { id: "b2", pk, v: 2 } },
      { operationType: "Read", id: "old" },
      { operationType: "Replace", id: "old", resourceBody: { id: "old", pk, v: 10 } },
      { operationType: "Patch", id: "b1", resourceBody: { operations: [{ op: "incr", path: "/v", value: 100 }] } },
      { operationType: "Delete", id: "del" },
    ],
    pk
  );
  const statuses = res.result.map((r) => r.statusCode);
  assert.deepEqual(statuses, [201, 201, 200, 200, 200, 204], `batch statuses ${JSON.stringify(statuses)}`);
  assert.equal(res.result[2].resourceBody.v, 0, "read inside the batch did not see the item");
  assert.equal((await container.item("b1", pk).read()).resource.v, 101);
  assert.equal((await container.item("b2", pk).read()).resource.v, 2);
  assert.equal((await container.item("old", pk).read()).resource.v, 10);
  assert.equal((await container.item("del", pk).read()).statusCode, 404);
});

test("batch: one failing operation fails the whole batch (207: 409 for it, 424 for the rest) and writes nothing", async () => {
  const pk = uid("bf-");
  await container.items.create({ id: "exists", pk, v: 1 });
  let res;
  try {
    res = await container.items.batch(
      [
        { operationType: "Create", resourceBody: { id: "n1", pk } },
        { operationType: "Replace", id: "exists", resourceBody: { id: "exists", pk, v: 2 } },
        { operationType: "Create", resourceBody: { id: "exists", pk } }, // 409
        { operationType: "Upsert", resourceBody: { id: "n2", pk } },
      ],
      pk
    );
  } catch (e) {
    assert.fail(
      `a failed transactional batch must answer 207 Multi-Status with per-operation results (Cosmos REST/transactional batch docs); the SDK threw: ${e.message}`
    );
  }
  assert.equal(res.code, 207, `top-level status ${res.code}, want 207`);
  const statuses = res.result.map((r) => r.statusCode);
  assert.deepEqual(statuses, [424, 424, 409, 424], `batch statuses ${JSON.stringify(statuses)}`);
  assert.equal((await container.item("n1", pk).read()).statusCode, 404, "an operation of the failed batch was written");
  assert.equal((await container.item("n2", pk).read()).statusCode, 404, "an operation of the failed batch was written");
  assert.equal((await container.item("exists", pk).read()).resource.v, 1, "the failed batch replaced an item");
});

test("bulk: executeBulkOperations returns a status per operation across partitions", async () => {
  const tag = uid("bk-");
  await container.items.create({ id: `${tag}-dup`, pk: "k1" });
  await container.items.create({ id: `${tag}-rep`, pk: "k2", v: 1 });
  await container.items.create({ id: `${tag}-del`, pk: "k3" });
  const ops = [
    // executeBulkOperations in 4.9.3 wants partitionKey on every operation
    // (without it the SDK itself fails the operation: "PartitionKey is required").
    { operationType: "Create", partitionKey: "k1", resourceBody: { id: `${tag}-c1`, pk: "k1" } },
    { operationType: "Create", partitionKey: "k2", resourceBody: { id: `${tag}-c2`, pk: "k2" } },
    { operationType: "Create", partitionKey: "k1", resourceBody: { id: `${tag}-dup`, pk: "k1" } }, // 409
    { operationType: "Upsert", partitionKey: "k2", resourceBody: { id: `${tag}-rep`, pk: "k2", v: 5 } }, // 200
    { operationType: "Read", id: `${tag}-missing`, partitionKey: "k3" }, // 404
    { operationType: "Delete", id: `${tag}-del`, partitionKey: "k3" }, // 204
    { operationType: "Replace", id: `${tag}-rep`, partitionKey: "k2", resourceBody: { id: `${tag}-rep`, pk: "k2", v: 6 } },
  ];
  const results = await container.items.executeBulkOperations(ops);
  assert.equal(results.length, ops.length);
  const status = (r) => r.response?.statusCode ?? r.error?.code;
  assert.deepEqual(results.map(status), [201, 201, 409, 200, 404, 204, 200], `bulk statuses ${JSON.stringify(results.map(status))}`);
  assert.equal((await container.item(`${tag}-c1`, "k1").read()).statusCode, 200);
  assert.equal((await container.item(`${tag}-c2`, "k2").read()).statusCode, 200);
  assert.equal((await container.item(`${tag}-rep`, "k2").read()).resource.v, 6);
  assert.equal((await container.item(`${tag}-del`, "k3").read()).statusCode, 404);
});

test("bulk: the deprecated items.bulk returns per-operation status codes", async () => {
  const tag = uid("bd-");
  const ops = [];
  for (let i = 0; i < 30; i++) ops.push({ operationType: "Create", resourceBody: { id: `${tag}-${i}`, pk: `k${i % 4}`, i } });
  ops.push({ operationType: "Create", resourceBody: { id: `${tag}-0`, pk: "k0" } }); // duplicate → 409
  const res = await container.items.bulk(ops);
  assert.equal(res.length, ops.length);
  assert.deepEqual(res.slice(0, 30).map((r) => r.statusCode), new Array(30).fill(201));
  assert.equal(res[30].statusCode, 409);
  const { resources } = await container.items
    .query({ query: "SELECT * FROM c WHERE c.id = @id", parameters: [{ name: "@id", value: `${tag}-17` }] })
    .fetchAll();
  assert.equal(resources.length, 1);
  assert.equal(resources[0].i, 17);
});
