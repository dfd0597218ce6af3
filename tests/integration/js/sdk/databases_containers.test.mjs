// Databases and containers through @azure/cosmos 4.9.3.
import crypto from "node:crypto";
import { after, before, test } from "node:test";
import { request } from "../../lib/rawhttp.mjs";
import { assert, expectCode, shutdown, startWithClient, uid } from "./common.mjs";

const RO_KEY = crypto.randomBytes(64).toString("base64");
let ctx;
before(async () => {
  ctx = await startWithClient({ args: ["--readonly-key", RO_KEY] });
});
after(async () => {
  await shutdown(ctx);
});

test("database account (GET /) names this server as its write and read location", async () => {
  const { resource } = await ctx.client.getDatabaseAccount();
  assert.ok(resource, "no database account");
  const w = resource.writableLocations || resource.writableRegions || [];
  assert.ok(w.length >= 1, "writableLocations must not be empty");
  assert.ok(
    w.every((l) => String(l.databaseAccountEndpoint).startsWith(`https://127.0.0.1:${ctx.srv.port}`) ||
      String(l.databaseAccountEndpoint).startsWith(`https://localhost:${ctx.srv.port}`)),
    `writable location is not this server: ${JSON.stringify(w)}`
  );
});

test("databases: createIfNotExists creates (201) then finds (200); read, readAll, delete", async () => {
  const id = uid("db-");
  const r1 = await ctx.client.databases.createIfNotExists({ id });
  assert.equal(r1.statusCode, 201);
  assert.equal(r1.resource.id, id);
  for (const p of ["_rid", "_self", "_etag", "_ts"]) assert.ok(r1.resource[p] !== undefined, `database lacks ${p}`);

  const r2 = await ctx.client.databases.createIfNotExists({ id });
  assert.equal(r2.statusCode, 200);
  assert.equal(r2.resource._rid, r1.resource._rid);

  const read = await ctx.client.database(id).read();
  assert.equal(read.statusCode, 200);
  assert.equal(read.resource.id, id);

  const { resources } = await ctx.client.databases.readAll().fetchAll();
  assert.ok(resources.some((d) => d.id === id), "readAll does not list the new database");

  await expectCode(() => ctx.client.databases.create({ id }), 409, "create of an existing database");

  const del = await ctx.client.database(id).delete();
  assert.equal(del.statusCode, 204);
  await expectCode(() => ctx.client.database(id).read(), 404, "read of a deleted database");
  const after = await ctx.client.databases.readAll().fetchAll();
  assert.ok(!after.resources.some((d) => d.id === id), "deleted database still listed");
  await expectCode(() => ctx.client.database(id).delete(), 404, "delete of a deleted database");
});

test("containers: createIfNotExists with a partition key; read returns partitionKey and indexingPolicy; delete", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const id = uid("c-");
  const r1 = await database.containers.createIfNotExists({ id, partitionKey: { paths: ["/pk"] } });
  assert.equal(r1.statusCode, 201);
  assert.ok(r1.resource._rid, "container lacks _rid");
  assert.deepEqual(r1.resource.partitionKey.paths, ["/pk"]);

  const r2 = await database.containers.createIfNotExists({ id, partitionKey: { paths: ["/pk"] } });
  assert.equal(r2.statusCode, 200);

  const { resource, statusCode } = await database.container(id).read();
  assert.equal(statusCode, 200);
  assert.equal(resource.id, id);
  assert.deepEqual(resource.partitionKey.paths, ["/pk"]);
  assert.equal(resource.partitionKey.kind, "Hash");
  assert.ok(resource.indexingPolicy, "container lacks indexingPolicy");
  assert.equal(resource.indexingPolicy.indexingMode.toLowerCase(), "consistent");
  for (const p of ["_rid", "_self", "_etag", "_ts"]) assert.ok(resource[p] !== undefined, `container lacks ${p}`);

  const { resources } = await database.containers.readAll().fetchAll();
  assert.ok(resources.some((c) => c.id === id), "readAll does not list the container");

  const del = await database.container(id).delete();
  assert.equal(del.statusCode, 204);
  await expectCode(() => database.container(id).read(), 404, "read of a deleted container");
});

test("containers: a custom indexing policy, unique keys and default TTL are stored and returned", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const indexingPolicy = {
    indexingMode: "consistent",
    automatic: true,
    includedPaths: [{ path: "/*" }],
    excludedPaths: [{ path: "/blob/*" }, { path: '/"_etag"/?' }],
  };
  const { container } = await database.containers.createIfNotExists({
    id: uid("c-"),
    partitionKey: { paths: ["/tenant"] },
    indexingPolicy,
    uniqueKeyPolicy: { uniqueKeys: [{ paths: ["/email"] }] },
    defaultTtl: 3600,
  });
  const { resource } = await container.read();
  assert.deepEqual(resource.partitionKey.paths, ["/tenant"]);
  const excluded = resource.indexingPolicy.excludedPaths.map((p) => p.path);
  assert.ok(excluded.includes("/blob/*"), `excludedPaths not kept: ${JSON.stringify(resource.indexingPolicy)}`);
  assert.deepEqual(resource.uniqueKeyPolicy.uniqueKeys.map((k) => k.paths), [["/email"]]);
  assert.equal(resource.defaultTtl, 3600);
});

test("containers: create in a database that does not exist is 404", async () => {
  await expectCode(
    () => ctx.client.database(uid("nodb-")).containers.create({ id: "c", partitionKey: { paths: ["/pk"] } }),
    404,
    "container create in a missing database"
  );
});

test("deleting a database removes its containers", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const { container } = await database.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/pk"] } });
  await container.items.create({ id: "a", pk: "p" });
  await database.delete();
  await expectCode(() => container.read(), 404, "read of a container of a deleted database");
  // Re-creating the database starts empty.
  const { database: again } = await ctx.client.databases.createIfNotExists({ id: database.id });
  const { resources } = await again.containers.readAll().fetchAll();
  assert.deepEqual(resources, []);
});

test("deleting a container makes its items unreachable; re-creating it starts empty", async () => {
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("db-") });
  const cid = uid("c-");
  const { container } = await database.containers.createIfNotExists({ id: cid, partitionKey: { paths: ["/pk"] } });
  for (let i = 0; i < 5; i++) await container.items.create({ id: `i${i}`, pk: "p", n: i });
  await container.delete();

  const gone = await container.item("i0", "p").read();
  assert.equal(gone.statusCode, 404, "item of a deleted container still readable");

  const { container: fresh } = await database.containers.createIfNotExists({ id: cid, partitionKey: { paths: ["/pk"] } });
  const r = await fresh.item("i0", "p").read();
  assert.equal(r.statusCode, 404, "item from before the delete is back after re-creating the container");
  const { resources } = await fresh.items.readAll().fetchAll();
  assert.deepEqual(resources, [], "re-created container is not empty");
  const q = await fresh.items.query("SELECT * FROM c").fetchAll();
  assert.deepEqual(q.resources, [], "query over the re-created container finds old items");
});

test("databases.query and containers.query run the query over the lists (with parameters)", async () => {
  const a = uid("qa-"), b = uid("qb-");
  await ctx.client.databases.create({ id: a });
  await ctx.client.databases.create({ id: b });
  const { resources: one } = await ctx.client.databases
    .query({ query: "SELECT * FROM root r WHERE r.id = @id", parameters: [{ name: "@id", value: a }] })
    .fetchAll();
  assert.deepEqual(one.map((d) => d.id), [a]);
  assert.ok(one[0]._rid && one[0]._self, "a queried database carries its system properties");
  const { resources: ids } = await ctx.client.databases
    .query("SELECT VALUE r.id FROM root r WHERE STARTSWITH(r.id, 'qa-') OR STARTSWITH(r.id, 'qb-') ORDER BY r.id")
    .fetchAll();
  assert.deepEqual(ids, [a, b].sort());
  const db = ctx.client.database(a);
  await db.containers.create({ id: "c1", partitionKey: { paths: ["/pk"] } });
  await db.containers.create({ id: "c2", partitionKey: { paths: ["/x"] }, defaultTtl: 60 });
  const { resources: colls } = await db.containers
    .query("SELECT c.id, c.partitionKey.paths[0] AS p FROM c WHERE IS_DEFINED(c.defaultTtl)")
    .fetchAll();
  assert.deepEqual(colls, [{ id: "c2", p: "/x" }]);
  const { resources: n } = await db.containers.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
  assert.deepEqual(n, [2]);
  // nothing was created by the queries
  const { resources: all } = await db.containers.readAll().fetchAll();
  assert.deepEqual(all.map((c) => c.id).sort(), ["c1", "c2"]);
  await expectCode(() => ctx.client.databases.query("SELECT * FROM").fetchAll(), 400, "a bad query");
  await expectCode(() => ctx.client.database(uid("nodb-")).containers.query("SELECT * FROM c").fetchAll(), 404,
    "containers of a missing database");
  await db.delete();
  await ctx.client.database(b).delete();
});

test("a read-only key: queries lists, but query headers do not make a create a read", async () => {
  const ro = (path, body, extra = {}, more = {}) => request(ctx.srv, { method: "POST", path, key: RO_KEY, body,
    headers: { "x-ms-documentdb-isquery": "true", "content-type": "application/query+json", ...extra }, ...more });
  const id = uid("ro-");
  const q = await ro("/dbs", { query: "SELECT VALUE COUNT(1) FROM r" });
  assert.equal(q.status, 200, q.text);
  // a body with an id and the query headers, on resources whose POST
  // creates: a query there (nothing made), or refused
  for (const [path, want] of [["/dbs", 200], [`/dbs/${id}/colls`, 404], ["/atrest/datakeys", 403], ["/atrest/backups", 403]]) {
    const r = await ro(path, { id, query: "SELECT * FROM r" });
    assert.equal(r.status, want, `${path}: ${r.text}`);
  }
  const { resources } = await ctx.client.databases.readAll().fetchAll();
  assert.ok(!resources.some((d) => d.id === id), "a read-only key created a database");
  // a read-only key may not delete a partition's documents either
  const { database } = await ctx.client.databases.create({ id });
  await database.containers.create({ id: "c", partitionKey: { paths: ["/pk"] } });
  await database.container("c").items.create({ id: "x", pk: "a" });
  const del = await ro(`/dbs/${id}/colls/c/operations/partitionkeydelete`, "",
    { "x-ms-documentdb-partitionkey": '["a"]' }, { resourceType: "colls", resourceLink: `dbs/${id}/colls/c` });
  assert.equal(del.status, 403, del.text);
  assert.equal((await database.container("c").item("x", "a").read()).statusCode, 200);
  await database.delete();
});

test("conflicts: an empty feed; server-side scripts and users: a clear 400", async () => {
  const { database } = await ctx.client.databases.create({ id: uid("cf-") });
  const { container } = await database.containers.create({ id: "c", partitionKey: { paths: ["/pk"] } });
  assert.deepEqual((await container.conflicts.readAll().fetchAll()).resources, []);
  assert.deepEqual((await container.conflicts.query("SELECT * FROM c").fetchAll()).resources, []);
  const e1 = await expectCode(() => container.scripts.storedProcedures.create({ id: "sp", body: "function () {}" }), 400, "a stored procedure");
  assert.match(e1.message, /server-side JavaScript/);
  await expectCode(() => container.scripts.userDefinedFunctions.create({ id: "u", body: "function (x) { return x; }" }), 400, "a UDF");
  await expectCode(() => container.scripts.triggers.create({ id: "t", body: "function () {}", triggerOperation: "All", triggerType: "Pre" }), 400, "a trigger");
  const e2 = await expectCode(() => database.users.create({ id: "u" }), 400, "a user");
  assert.match(e2.message, /master or read-only keys/);
  await expectCode(() => database.container(uid("none-")).conflicts.readAll().fetchAll(), 404, "conflicts of a missing container");
  await database.delete();
});
