// Time to live (docs/server.md, "Time to live") through @azure/cosmos 4.9.3:
// a container's defaultTtl and an item's ttl, as Cosmos defines them; an
// expired item is gone for reads, queries, feeds and the change feed, its
// id can be created again; changing defaultTtl applies to existing items;
// invalid ttl values are 400.
import { test } from "node:test";
import { ChangeFeedStartFrom, StatusCodes } from "@azure/cosmos";
import { assert, expectCode, serverWithDatabase, uid } from "./common.mjs";

const env = serverWithDatabase();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function container(defaultTtl) {
  const def = { id: uid("ttl-"), partitionKey: { paths: ["/pk"] } };
  if (defaultTtl !== undefined) def.defaultTtl = defaultTtl;
  const { container: c, resource } = await env.database.containers.createIfNotExists(def);
  assert.equal(resource.defaultTtl, defaultTtl);
  return c;
}

const ids = async (c) =>
  (await c.items.query("SELECT c.id FROM c", { maxItemCount: -1 }).fetchAll()).resources.map((d) => d.id).sort();

test("defaultTtl n: items go n seconds after their last write, unless their own ttl says otherwise", async () => {
  // _ts has one-second resolution: the waits leave a second of margin.
  const c = await container(4);
  await c.items.create({ id: "plain", pk: "p" });
  await c.items.create({ id: "forever", pk: "p", ttl: -1 });
  await c.items.create({ id: "longer", pk: "p", ttl: 60 });
  await c.items.create({ id: "touched", pk: "p" });
  assert.equal((await c.item("plain", "p").read()).statusCode, 200);
  await sleep(2500);
  await c.item("touched", "p").replace({ id: "touched", pk: "p", v: 2 }); // the clock restarts
  await sleep(2600);
  assert.equal((await c.item("plain", "p").read()).statusCode, 404, "expired item still readable");
  assert.equal((await c.item("touched", "p").read()).statusCode, 200, "a replace restarts the clock");
  await sleep(5500); // "touched" expired too, and the sweeper has run
  assert.deepEqual(await ids(c), ["forever", "longer"]);
  const feed = (await c.items.readAll().fetchAll()).resources.map((d) => d.id).sort();
  assert.deepEqual(feed, ["forever", "longer"]);
  const cf = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
  const page = await cf.readNext();
  assert.deepEqual(page.result.map((d) => d.id).sort(), ["forever", "longer"]);
  const count = await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
  assert.deepEqual(count.resources, [2]);
  // An expired id can be created again; a replace or delete of it is 404.
  const again = await c.items.create({ id: "plain", pk: "p", ttl: -1 });
  assert.equal(again.statusCode, StatusCodes.Created);
});

test("an expired item is 404 at once, before the sweeper: read, replace, delete, create again", async () => {
  const c = await container(-1);
  await c.items.create({ id: "x", pk: "p", ttl: 1 });
  await c.items.create({ id: "stays", pk: "p" }); // -1: only items with a ttl expire
  await sleep(2100);
  assert.equal((await c.item("x", "p").read()).statusCode, 404);
  await expectCode(() => c.item("x", "p").replace({ id: "x", pk: "p" }), 404, "replace of an expired item");
  assert.equal((await c.items.create({ id: "x", pk: "p" })).statusCode, 201);
  assert.equal((await c.item("x", "p").read()).statusCode, 200, "recreated without a ttl under -1: stays");
  assert.equal((await c.item("stays", "p").read()).statusCode, 200);
});

test("no defaultTtl: an item's ttl is ignored; turning defaultTtl on applies to existing items", async () => {
  const c = await container(undefined);
  await c.items.create({ id: "a", pk: "p", ttl: 1 });
  await c.items.create({ id: "b", pk: "p" });
  await sleep(2100);
  assert.equal((await c.item("a", "p").read()).statusCode, 200, "ttl without defaultTtl must be ignored");
  const { resource: def } = await c.read();
  def.defaultTtl = 1;
  const rep = await c.replace(def);
  assert.equal(rep.resource.defaultTtl, 1);
  assert.equal((await c.item("a", "p").read()).statusCode, 404);
  assert.equal((await c.item("b", "p").read()).statusCode, 404);
  delete def.defaultTtl;
  await c.replace(def);
  await c.items.create({ id: "c", pk: "p", ttl: 1 });
  await sleep(2100);
  assert.equal((await c.item("c", "p").read()).statusCode, 200);
});

test("invalid ttl values are 400; defaultTtl 0 is 400", async () => {
  const c = await container(100);
  for (const ttl of [0, -2, 1.5, "10", true, 2147483648]) {
    await expectCode(() => c.items.create({ id: uid("bad-"), pk: "p", ttl }), 400, `ttl ${JSON.stringify(ttl)}`);
  }
  await c.items.create({ id: "ok", pk: "p", ttl: 5 });
  await expectCode(() => c.item("ok", "p").patch([{ op: "set", path: "/ttl", value: 0 }]), 400, "patch ttl 0");
  await expectCode(
    () => env.database.containers.create({ id: uid("ttl0-"), partitionKey: { paths: ["/pk"] }, defaultTtl: 0 }),
    400,
    "defaultTtl 0",
  );
});
