// End-to-end no-plaintext: documents written through @azure/cosmos carry
// random canaries (in ids, partition keys, field values, database and
// container names, query parameters, and in requests that fail). After the
// server stops -- cleanly (SIGTERM) or killed (SIGKILL, write-ahead log still
// present) -- no file under the server's folders and none of its output may
// hold any canary, as UTF-8 or UTF-16. A restart on the same folders must
// read the documents back, so the scan is over real data.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { test } from "node:test";
import "../../lib/webcrypto.mjs";
import { CosmosClient } from "@azure/cosmos";
import { startServer } from "../../lib/harness.mjs";

const hex = (n) => crypto.randomBytes(n).toString("hex");

function makeCanaries() {
  return {
    db: `cdb${hex(12)}`,
    coll: `ccl${hex(12)}`,
    id: `cid${hex(12)}`,
    pk: `cpk${hex(12)}`,
    field: `cfv${hex(12)}`,
    bigfield: `cbg${hex(12)}`,
    patched: `cpt${hex(12)}`,
    query: `cqp${hex(12)}`,
    failed: `cfl${hex(12)}`,
  };
}

function client(srv) {
  return new CosmosClient({ endpoint: srv.endpoint, key: srv.masterKey, agent: new https.Agent({ ca: srv.cert }) });
}

function walk(dir, out = []) {
  let entries = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function needles(canaries) {
  const list = [];
  for (const [name, c] of Object.entries(canaries)) {
    list.push([`${name} (utf-8)`, Buffer.from(c, "utf8")]);
    list.push([`${name} (utf-16le)`, Buffer.from(c, "utf16le")]);
  }
  return list;
}

function hits(buf, list) {
  return list.filter(([, n]) => buf.includes(n)).map(([name]) => name);
}

/** Every file under root except the server logs: [{file, hits}] with hits. */
function scanFolder(root, list) {
  const found = [];
  for (const f of walk(root)) {
    if (/^server-.*\.log$/.test(path.basename(f)) && path.dirname(f) === root) continue;
    const h = hits(fs.readFileSync(f), list);
    if (h.length) found.push({ file: path.relative(root, f), hits: h });
  }
  return found;
}

async function writeWithCanaries(srv, c) {
  const cl = client(srv);
  try {
    const { database } = await cl.databases.createIfNotExists({ id: c.db });
    const { container } = await database.containers.createIfNotExists({
      id: c.coll,
      partitionKey: { paths: ["/pk"] },
      // Every document keeps an email: Cosmos treats a missing unique-key
      // value as one value, so two documents without one would conflict.
      uniqueKeyPolicy: { uniqueKeys: [{ paths: ["/email"] }] },
    });
    const big = (c.bigfield + " ").repeat(2000); // ~60 KB: spills over pages
    for (let i = 0; i < 40; i++) {
      await container.items.create({
        id: `${c.id}-${i}`,
        pk: c.pk,
        secret: `${c.field}-${i}`,
        email: `${c.field}-${i}@example.com`,
        nested: { deep: [c.field] },
        big: i % 10 === 0 ? big : "small",
      });
    }
    // Replace, upsert, patch and delete: old versions must not linger in clear.
    await container.item(`${c.id}-1`, c.pk).replace({ id: `${c.id}-1`, pk: c.pk, secret: `${c.field}-replaced`, email: `${c.field}-1r@example.com` });
    await container.items.upsert({ id: `${c.id}-2`, pk: c.pk, secret: `${c.field}-upserted`, email: `${c.field}-2u@example.com` });
    await container.item(`${c.id}-3`, c.pk).patch([{ op: "set", path: "/secret", value: c.patched }]);
    await container.item(`${c.id}-4`, c.pk).delete();
    await container.items.batch(
      [
        { operationType: "Create", resourceBody: { id: `${c.id}-b1`, pk: c.pk, secret: c.field, email: `${c.field}-b1@example.com` } },
        { operationType: "Upsert", resourceBody: { id: `${c.id}-b2`, pk: c.pk, secret: c.field, email: `${c.field}-b2@example.com` } },
      ],
      c.pk
    );
    // Queries carrying a canary as a parameter and as a literal.
    await container.items
      .query({ query: "SELECT * FROM c WHERE c.secret = @s", parameters: [{ name: "@s", value: c.query }] })
      .fetchAll();
    await container.items.query(`SELECT * FROM c WHERE c.secret = '${c.query}'`).fetchAll();
    // Failing requests that carry canaries: duplicate id, unique key violation, missing item.
    await container.items.create({ id: `${c.id}-0`, pk: c.pk, secret: c.failed }).catch(() => {});
    await container.items.create({ id: `${c.failed}-u`, pk: c.pk, email: `${c.field}-5@example.com` }).catch(() => {});
    await container.item(c.failed, c.pk).read();
    await container.item(c.failed, c.pk).replace({ id: c.failed, pk: c.pk }).catch(() => {});
    return { db: c.db, coll: c.coll };
  } finally {
    cl.dispose();
  }
}

async function readBack(srv, c) {
  const cl = client(srv);
  try {
    const container = cl.database(c.db).container(c.coll);
    const r = await container.item(`${c.id}-7`, c.pk).read();
    assert.equal(r.statusCode, 200, "document written before the stop is gone after restart");
    assert.equal(r.resource.secret, `${c.field}-7`);
    assert.equal((await container.item(`${c.id}-1`, c.pk).read()).resource.secret, `${c.field}-replaced`);
    assert.equal((await container.item(`${c.id}-3`, c.pk).read()).resource.secret, c.patched);
    assert.equal((await container.item(`${c.id}-4`, c.pk).read()).statusCode, 404);
    assert.equal((await container.item(`${c.id}-b2`, c.pk).read()).statusCode, 200);
    const { resources } = await container.items.readAll().fetchAll();
    assert.equal(resources.length, 41, `after restart readAll found ${resources.length} documents, want 41`);
  } finally {
    cl.dispose();
  }
}

function assertClean(srv, canaries, when) {
  const list = needles(canaries);
  const files = walk(srv.dataDir);
  assert.ok(files.length > 0, "the data folder is empty: nothing to scan");
  const bytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  assert.ok(bytes > 100 * 1024, `the data folder holds only ${bytes} bytes: the documents are not there`);

  const found = scanFolder(srv.root, list);
  assert.deepEqual(found, [], `${when}: canaries in clear on disk: ${JSON.stringify(found)}`);

  const logHits = hits(srv.allLogs(), list);
  assert.deepEqual(logHits, [], `${when}: canaries in the server's output: ${logHits.join(", ")}`);

  for (const f of files) {
    const t = fs.readFileSync(f);
    assert.ok(!t.includes(Buffer.from("PRIVATE KEY")), `a private key is stored in the data folder: ${f}`);
    // Ciphertext or not, nothing atrestd writes is readable by other users.
    const mode = fs.statSync(f).mode & 0o777;
    assert.equal(mode & 0o077, 0, `${f} has mode ${mode.toString(8)}: readable by group or others`);
  }
  return { files: files.length, bytes };
}

test("no plaintext after a clean stop (SIGTERM); documents survive a restart", { timeout: 120000 }, async () => {
  const c = makeCanaries();
  let srv = await startServer();
  try {
    await writeWithCanaries(srv, c);
    const r = await srv.stop({ signal: "SIGTERM" });
    assert.equal(r.sanitizer, null, `sanitizer report:\n${r.sanitizer}`);
    assert.deepEqual({ code: r.code, signal: r.signal, forced: r.forced }, { code: 0, signal: null, forced: false },
      "atrestd did not exit cleanly on SIGTERM");
    const info = assertClean(srv, c, "after SIGTERM");
    console.log(`scanned ${info.files} files, ${info.bytes} bytes: no canary`);

    srv = await startServer({ root: srv.root });
    await readBack(srv, c);
    await srv.stop();
    assertClean(srv, c, "after restart and a second stop");
  } finally {
    if (srv.alive()) await srv.stop({ signal: "SIGKILL" });
    srv.cleanup();
  }
});

test("no plaintext after SIGKILL (write-ahead log still present); acknowledged writes survive", { timeout: 120000 }, async () => {
  const c = makeCanaries();
  let srv = await startServer();
  try {
    await writeWithCanaries(srv, c);
    const r = await srv.stop({ signal: "SIGKILL" });
    assert.equal(r.signal, "SIGKILL");
    const wal = walk(srv.dataDir).filter((f) => /-wal$|\.wal$|journal/i.test(f));
    console.log(`after SIGKILL: ${wal.length} WAL/journal file(s): ${wal.map((f) => path.basename(f)).join(", ")}`);
    const info = assertClean(srv, c, "after SIGKILL");
    console.log(`scanned ${info.files} files, ${info.bytes} bytes: no canary`);

    srv = await startServer({ root: srv.root });
    await readBack(srv, c);
    const r2 = await srv.stop({ signal: "SIGKILL" });
    assert.equal(r2.signal, "SIGKILL");
    assertClean(srv, c, "after restart and a second SIGKILL");
  } finally {
    if (srv.alive()) await srv.stop({ signal: "SIGKILL" });
    srv.cleanup();
  }
});
