// The change feed (docs/changefeed.md) through @azure/cosmos 4.9.3: both of
// the SDK's readers — getChangeFeedIterator (feed ranges, JSON continuation
// tokens) and the older items.changeFeed (per partition key, etag) — see
// creates, replaces, upserts and patches in order, each document once in
// its latest version, resume from a continuation, start "now", and from a
// time; a restart keeps the position.
import { test } from "node:test";
import { ChangeFeedStartFrom, StatusCodes } from "@azure/cosmos";
import { assert, serverWithDatabase, startWithClient, uid } from "./common.mjs";

const env = serverWithDatabase();

async function newContainer() {
  const { container } = await env.database.containers.createIfNotExists({
    id: uid("cf-"),
    partitionKey: { paths: ["/pk"] },
  });
  return container;
}

// Every page until the feed says "nothing new" (304); returns items and the
// last continuation token.
async function drain(it) {
  const items = [];
  let token;
  for (let guard = 0; guard < 1000; guard++) {
    const r = await it.readNext();
    token = r.continuationToken;
    if (r.statusCode === StatusCodes.NotModified) break;
    assert.equal(r.statusCode, 200);
    items.push(...r.result);
  }
  return { items, token };
}

test("from the beginning: every document once, latest version, in change order, paged", async () => {
  const c = await newContainer();
  for (let i = 0; i < 25; i++) await c.items.create({ id: `d${i}`, pk: `p${i % 3}`, v: 0 });
  await c.item("d3", "p0").replace({ id: "d3", pk: "p0", v: 1 });
  await c.items.upsert({ id: "d4", pk: "p1", v: 2 });
  await c.item("d5", "p2").patch([{ op: "set", path: "/v", value: 3 }]);
  await c.item("d6", "p0").delete();
  const it = c.items.getChangeFeedIterator({
    changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
    maxItemCount: 7,
  });
  const { items } = await drain(it);
  const ids = items.map((d) => d.id);
  const unchanged = [...Array(25).keys()].filter((i) => ![3, 4, 5, 6].includes(i)).map((i) => `d${i}`);
  assert.deepEqual(ids, [...unchanged, "d3", "d4", "d5"]);
  assert.deepEqual(items.slice(-3).map((d) => d.v), [1, 2, 3]);
  for (const d of items) assert.equal(typeof d._lsn, "number");
  const lsns = items.map((d) => d._lsn);
  assert.deepEqual([...lsns].sort((a, b) => a - b), lsns, "not in change order");
});

test("a continuation resumes after the last change; Now() sees only later changes", async () => {
  const c = await newContainer();
  await c.items.create({ id: "a", pk: "x" });
  const first = await drain(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() }),
  );
  assert.deepEqual(first.items.map((d) => d.id), ["a"]);
  const now = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now() });
  const none = await now.readNext();
  assert.equal(none.statusCode, StatusCodes.NotModified);
  await c.items.create({ id: "b", pk: "y" });
  await c.item("a", "x").replace({ id: "a", pk: "x", again: true });
  const resumed = await drain(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Continuation(first.token) }),
  );
  assert.deepEqual(resumed.items.map((d) => d.id), ["b", "a"]);
  assert.equal(resumed.items[1].again, true);
  const fromNow = await drain(now);
  assert.deepEqual(fromNow.items.map((d) => d.id), ["b", "a"]);
});

test("one partition key; and from a time", async () => {
  const c = await newContainer();
  await c.items.create({ id: "old", pk: "k1" });
  await new Promise((r) => setTimeout(r, 1100)); // _ts has one-second resolution
  const t = new Date();
  await new Promise((r) => setTimeout(r, 1100));
  await c.items.create({ id: "new1", pk: "k1" });
  await c.items.create({ id: "new2", pk: "k2" });
  const byPk = await drain(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning("k1") }),
  );
  assert.deepEqual(byPk.items.map((d) => d.id), ["old", "new1"]);
  const since = await drain(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Time(t) }),
  );
  assert.deepEqual(since.items.map((d) => d.id), ["new1", "new2"]);
  // The older per-partition-key reader (items.changeFeed), driven by etags.
  const legacy = c.items.changeFeed("k2", { startFromBeginning: true });
  const page = await legacy.fetchNext();
  assert.deepEqual(page.result.map((d) => d.id), ["new2"]);
  const after = await legacy.fetchNext();
  assert.equal(after.count, 0);
  assert.equal(legacy.hasMoreResults, false);
});

test("the position survives a restart, and a bad one is a 400", async () => {
  const c = await newContainer();
  await c.items.create({ id: "before", pk: "p" });
  const first = await drain(
    c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() }),
  );
  env.ctx.client.dispose();
  const r = await env.ctx.srv.stop({ signal: "SIGTERM" });
  assert.deepEqual({ code: r.code, forced: r.forced, sanitizer: r.sanitizer }, { code: 0, forced: false, sanitizer: null });
  env.ctx = await startWithClient({ root: env.ctx.srv.root });
  const c2 = env.ctx.client.database(env.database.id).container(c.id);
  await c2.items.create({ id: "after", pk: "p" });
  const resumed = await drain(
    c2.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Continuation(first.token) }),
  );
  assert.deepEqual(resumed.items.map((d) => d.id), ["after"]);
  const legacy = c2.items.changeFeed("p", { continuation: '"not-a-position"' });
  await assert.rejects(() => legacy.fetchNext(), (e) => e.code === 400);
});
