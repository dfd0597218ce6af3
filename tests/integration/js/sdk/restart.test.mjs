// Queries across a server restart, through @azure/cosmos 4.9.3: a
// continuation token taken before a restart resumes the same query after it
// (tokens hold positions, not server state), and an index rebuild cut short
// by SIGKILL resumes at the next start and completes.
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { CosmosClient } from "@azure/cosmos";
import { startServer } from "../../lib/harness.mjs";
import { assert, rebuilt } from "./common.mjs";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "atrest-it-restart-"));
let srv = null;
let client = null;

async function start() {
  srv = await startServer({ root });
  client = new CosmosClient({ endpoint: srv.endpoint, key: srv.masterKey, agent: new https.Agent({ ca: srv.cert, keepAlive: true }) });
  return client.database("db").container("c");
}

async function stop(signal = "SIGTERM") {
  client.dispose();
  const r = await srv.stop({ signal });
  assert.equal(r.sanitizer, null, `sanitizer report in atrestd output:\n${r.sanitizer}`);
  if (signal === "SIGTERM") assert.deepEqual({ code: r.code, signal: r.signal, forced: r.forced }, { code: 0, signal: null, forced: false });
}

after(() => {
  if (srv && srv.alive()) srv.proc.kill("SIGKILL");
  fs.rmSync(root, { recursive: true, force: true });
});

const N = 3000;
const QUERY = "SELECT c.id, c.n FROM c WHERE c.n >= 100 ORDER BY c.n DESC";

async function pages(container, opts) {
  const it = container.items.query(QUERY, { maxItemCount: 50, ...opts });
  const first = await it.fetchNext();
  return { first, it };
}

test("a continuation token survives a restart; a rebuild cut by SIGKILL resumes", async () => {
  let c = await start();
  await client.databases.create({ id: "db" });
  await client.database("db").containers.create({ id: "c", partitionKey: { paths: ["/pk"] }, indexingPolicy: { indexingMode: "none", automatic: false } });
  for (let i = 0; i < N; i += 100) {
    const ops = [];
    for (let j = i; j < i + 100; j++) ops.push({ operationType: "Create", resourceBody: { id: `d${j}`, pk: `p${j % 5}`, n: j, pad: "x".repeat(200) } });
    for (const r of await c.items.bulk(ops)) assert.equal(r.statusCode, 201);
  }
  // the whole answer, and the first page with its token
  const all = (await c.items.query(QUERY, { maxItemCount: -1 }).fetchAll()).resources;
  assert.equal(all.length, N - 100);
  const { first } = await pages(c);
  assert.equal(first.resources.length, 50);
  assert.ok(first.continuationToken, "a first page of 50 rows has a continuation token");
  await stop();

  c = await start();
  const it = c.items.query(QUERY, { maxItemCount: 50, continuationToken: first.continuationToken });
  let rest = [];
  while (it.hasMoreResults()) rest = rest.concat((await it.fetchNext()).resources);
  assert.deepEqual([...first.resources, ...rest], all, "resumed after a restart: the same rows, in order, once");

  // switch indexing on and kill the server while it rebuilds
  const { resource: def } = await c.read();
  def.indexingPolicy = { indexingMode: "consistent", automatic: true, includedPaths: [{ path: "/*" }], excludedPaths: [] };
  await c.replace(def);
  await stop("SIGKILL");

  c = await start();
  assert.equal(await rebuilt(c, 400), 100, "the rebuild finished after the restart");
  const q = c.items.query("SELECT VALUE c.id FROM c WHERE c.n = 1234", { populateQueryMetrics: true });
  const res = await q.fetchAll();
  assert.deepEqual(res.resources, ["d1234"]);
  const retrieved = Object.values(res.queryMetrics || {}).reduce((a, m) => a + m.retrievedDocumentCount, 0);
  assert.equal(retrieved, 1, "the rebuilt index serves the query");
  assert.deepEqual((await c.items.query(QUERY, { maxItemCount: 200 }).fetchAll()).resources, all);
  await stop();
});

test("throughput offers: created, read, queried, replaced, kept across a restart, gone with their owner", async () => {
  await start();
  const { database: shared } = await client.databases.create({ id: "shared", throughput: 1200 });
  const { container: own } = await shared.containers.create({ id: "own", partitionKey: { paths: ["/pk"] }, throughput: 500 });
  const { container: inShared } = await shared.containers.create({ id: "in", partitionKey: { paths: ["/pk"] } });
  const { database: plain } = await client.databases.create({ id: "plain" });
  const { container: auto } = await plain.containers.create({ id: "auto", partitionKey: { paths: ["/pk"] }, maxThroughput: 4000 });
  const { container: dflt } = await plain.containers.create({ id: "dflt", partitionKey: { paths: ["/pk"] } });

  assert.equal((await shared.readOffer()).resource.content.offerThroughput, 1200);
  const o = (await own.readOffer()).resource;
  assert.equal(o.content.offerThroughput, 500);
  assert.equal(o.resource, (await own.read()).resource._self);
  assert.equal(o.offerResourceId, (await own.read()).resource._rid);
  assert.equal((await inShared.readOffer()).resource, undefined, "a container on shared throughput has no offer");
  assert.equal((await plain.readOffer()).resource, undefined, "a database created without throughput has no offer");
  assert.deepEqual((await auto.readOffer()).resource.content.offerAutopilotSettings, { maxThroughput: 4000 });
  assert.equal((await dflt.readOffer()).resource.content.offerThroughput, 400);
  const mine = new Set();
  for (const r of [shared, own, auto, dflt, inShared, plain]) mine.add((await r.read()).resource._rid);
  const { resources: all } = await client.offers.readAll().fetchAll();
  assert.equal(all.filter((x) => mine.has(x.offerResourceId)).length, 4);
  const { resources: q } = await client.offers
    .query({ query: "SELECT VALUE r.content.offerThroughput FROM root r WHERE r.offerResourceId = @rid", parameters: [{ name: "@rid", value: o.offerResourceId }] })
    .fetchAll();
  assert.deepEqual(q, [500]);

  // replace: manual and autoscale; invalid values are 400 and change nothing
  o.content.offerThroughput = 2500;
  const rep = await client.offer(o.id).replace(o);
  assert.equal(rep.resource.content.offerThroughput, 2500);
  assert.notEqual(rep.resource._etag, o._etag);
  for (const bad of [450, 300, 2000000]) {
    const b = structuredClone(rep.resource);
    b.content.offerThroughput = bad;
    let code = null;
    try {
      await client.offer(o.id).replace(b);
    } catch (e) {
      code = e.code;
    }
    assert.equal(code, 400, `throughput ${bad}`);
  }
  const a = (await auto.readOffer()).resource;
  a.content.offerAutopilotSettings.maxThroughput = 10000;
  assert.equal((await client.offer(a.id).replace(a)).resource.content.offerAutopilotSettings.maxThroughput, 10000);
  let code = null;
  try {
    await plain.containers.create({ id: "bad", partitionKey: { paths: ["/pk"] }, throughput: 399 });
  } catch (e) {
    code = e.code;
  }
  assert.equal(code, 400, "a create with an invalid throughput");
  code = null;
  try {
    await client.offer("c00000009999").read();
  } catch (e) {
    code = e.code;
  }
  assert.equal(code, 404, "an unknown offer");

  await stop();
  await start();
  assert.equal((await client.database("shared").container("own").readOffer()).resource.content.offerThroughput, 2500);
  assert.equal((await client.database("plain").container("auto").readOffer()).resource.content.offerAutopilotSettings.maxThroughput, 10000);
  await client.database("shared").delete();
  await client.database("plain").container("dflt").delete();
  const { resources: left } = await client.offers.readAll().fetchAll();
  assert.deepEqual(left.map((x) => x.offerResourceId).filter((rid) => mine.has(rid)),
    [(await client.database("plain").container("auto").read()).resource._rid]);
  await stop();
});

test("SIGTERM while keep-alive clients keep sending queries and writes: a clean stop, acknowledged writes kept", async () => {
  await start();
  const { database: db } = await client.databases.createIfNotExists({ id: "sig" });
  const { container: load } = await db.containers.createIfNotExists({ id: "load", partitionKey: { paths: ["/pk"] } });
  let go = true;
  const acked = [];
  const writer = async (w) => {
    for (let i = 0; go; i++) {
      try {
        await load.items.create({ id: `w${w}-${i}`, pk: `p${w}` });
        acked.push(`w${w}-${i}`);
      } catch {
        return; // the server is going away
      }
    }
  };
  const reader = async () => {
    while (go) {
      try {
        await load.items.query("SELECT VALUE COUNT(1) FROM c WHERE c.n >= 0").fetchAll();
      } catch {
        return;
      }
    }
  };
  const loops = [writer(0), writer(1), reader(), reader()];
  await new Promise((r) => setTimeout(r, 1500));
  await stop(); // asserts exit 0, not forced, no sanitizer report (libmicrohttpd aborted here before)
  go = false;
  await Promise.all(loops);
  assert.ok(acked.length > 10, `writes were acknowledged before the stop (${acked.length})`);
  await start();
  const { resources } = await client.database("sig").container("load").items.query("SELECT VALUE c.id FROM c").fetchAll();
  const have = new Set(resources);
  for (const id of acked) assert.ok(have.has(id), `acknowledged ${id} is missing after the restart`);
  await stop();
});
