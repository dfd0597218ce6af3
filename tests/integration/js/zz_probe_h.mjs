import { startWithClient, shutdown } from "./sdk/common.mjs";
import { PartitionKeyKind, BulkOperationType, ChangeFeedStartFrom } from "@azure/cosmos";
const env = await startWithClient({});
const { client } = env;
async function t(name, fn) {
  try { const r = await fn(); console.log("OK  ", name, r === undefined ? "" : JSON.stringify(r).slice(0, 300)); }
  catch (e) { console.log("FAIL", name, e.code, (e.message || "").slice(0, 300)); }
}
const { database } = await client.databases.createIfNotExists({ id: "s" });
const { container: h } = await database.containers.createIfNotExists({ id: "h", partitionKey: { paths: ["/t", "/u", "/w"], version: 2, kind: PartitionKeyKind.MultiHash } });
await t("read container", async () => (await h.read()).resource.partitionKey);
await t("create", async () => {
  await h.items.create({ id: "1", t: "a", u: "x", w: 1 });
  await h.items.create({ id: "2", t: "a", u: "y", w: 2 });
  await h.items.create({ id: "3", t: "b", u: "y", w: 3 });
  await h.items.create({ id: "4", t: "a", u: "x", w: 4 });
  return (await h.items.create({ id: "5", t: "a" })).statusCode;
});
await t("dup id other key", async () => (await h.items.create({ id: "1", t: "a", u: "x", w: 2 })).statusCode);
await t("read", async () => (await h.item("1", ["a", "x", 1]).read()).resource.id);
await t("read wrong", async () => (await h.item("1", ["a", "x", 2]).read()).statusCode);
await t("read partial", async () => (await h.item("1", ["a", "x"]).read()).statusCode);
await t("read undefined comp", async () => (await h.item("5", ["a", undefined, undefined]).read()).statusCode);
await t("read undefined comp2", async () => (await h.item("5", ["a"]).read()).statusCode);
await t("replace", async () => (await h.item("2", ["a", "y", 2]).replace({ id: "2", t: "a", u: "y", w: 2, z: 1 })).statusCode);
await t("patch", async () => (await h.item("2", ["a", "y", 2]).patch([{ op: "set", path: "/z", value: 5 }])).resource.z);
await t("upsert", async () => (await h.items.upsert({ id: "6", t: "c", u: "z", w: 0 })).statusCode);
await t("delete", async () => (await h.item("6", ["c", "z", 0]).delete()).statusCode);
await t("query pk1", async () => (await h.items.query("SELECT VALUE c.id FROM c", { partitionKey: ["a"] }).fetchAll()).resources);
await t("query pk2", async () => (await h.items.query("SELECT VALUE c.id FROM c", { partitionKey: ["a", "x"] }).fetchAll()).resources);
await t("query pk3", async () => (await h.items.query("SELECT VALUE c.id FROM c", { partitionKey: ["a", "x", 4] }).fetchAll()).resources);
await t("query pk1 order", async () => (await h.items.query("SELECT VALUE c.id FROM c ORDER BY c.w DESC", { partitionKey: ["a"] }).fetchAll()).resources);
await t("query pk1 count", async () => (await h.items.query("SELECT VALUE COUNT(1) FROM c", { partitionKey: ["a"] }).fetchAll()).resources);
await t("query pk1 paged", async () => { const it = h.items.query("SELECT VALUE c.id FROM c", { partitionKey: ["a"], maxItemCount: 1 }); const out = []; while (it.hasMoreResults()) { const r = await it.fetchNext(); out.push(...r.resources); } return out; });
await t("query where", async () => (await h.items.query("SELECT VALUE c.id FROM c WHERE c.t = 'a' AND c.u = 'x'").fetchAll()).resources);
await t("readAll pk", async () => (await h.items.readAll({ partitionKey: ["a", "x"] }).fetchAll()).resources.map((d) => d.id));
await t("changefeed full pk", async () => {
  const it = h.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(["a", "x", 1]) });
  const r = await it.readNext(); return r.result.map((d) => d.id);
});
await t("changefeed prefix pk", async () => {
  const it = h.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(["a"]) });
  const r = await it.readNext(); return r.result.map((d) => d.id);
});
await t("batch", async () => {
  const r = await h.items.batch([
    { operationType: "Create", resourceBody: { id: "b1", t: "q", u: "r", w: 1 } },
    { operationType: "Read", id: "b1" },
  ], ["q", "r", 1]);
  return r.result.map((x) => x.statusCode);
});
await t("bulk", async () => {
  const r = await h.items.bulk([
    { operationType: BulkOperationType.Create, resourceBody: { id: "k1", t: "q", u: "r", w: 2 } },
    { operationType: BulkOperationType.Read, id: "k1", partitionKey: ["q", "r", 2] },
  ]);
  return r.map((x) => x.statusCode);
});
await t("deleteAllForPk", async () => { await h.deleteAllItemsForPartitionKey(["q", "r", 1]); return (await h.items.query("SELECT VALUE c.id FROM c WHERE c.t='q'").fetchAll()).resources; });
await shutdown(env);
