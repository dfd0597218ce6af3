// Continuous backups into Azure Blob Storage (Azurite): atrestd with
// --backup-mode continuous and an azblob: target ships every commit;
// `atrest backup restore --at` a noted moment gives, on a new account,
// exactly the documents of that moment. Documents go through hand-signed
// REST requests (tests/integration/lib/rawhttp.mjs): this suite has no SDK.
//
// Environment: ATREST_BIN (atrestd), ATREST_CLI (atrest).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { startServer, stopAndCheck } from "../lib/harness.mjs";
import { request } from "../lib/rawhttp.mjs";
import { ACCOUNT, cli, startAzurite, stopAzurite, tmpdir, writeKey } from "./azurite.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let az, dir, key, srv, target;

const pk = (i) => JSON.stringify([`p${i % 3}`]);

async function create(s, i, text) {
  const r = await request(s, {
    method: "POST",
    path: "/dbs/db1/colls/items/docs",
    headers: { "x-ms-documentdb-partitionkey": pk(i) },
    body: { id: `d${i}`, pk: `p${i % 3}`, text },
  });
  assert.equal(r.status, 201, r.text);
}

async function ids(s) {
  const r = await request(s, { path: "/dbs/db1/colls/items/docs", headers: { "x-ms-max-item-count": "1000" } });
  assert.equal(r.status, 200, r.text);
  return r.json.Documents.map((d) => d.id).sort();
}

async function waitShipped(t) {
  for (let i = 0; i < 300; i++) {
    const r = await request(srv, { path: "/atrest/backups" });
    assert.equal(r.status, 200, r.text);
    if (r.json.backups.length > 0 && r.json.continuous.coveredUntil >= t) return r.json;
    await sleep(100);
  }
  assert.fail("the log never covered the time");
}

before(async () => {
  dir = tmpdir("cont");
  key = writeKey(dir);
  az = await startAzurite(path.join(dir, "azurite"));
  target = `azblob:http://127.0.0.1:${az.port}/${ACCOUNT}/continuous`;
  fs.mkdirSync(path.join(dir, "srv"));
  srv = await startServer({
    root: path.join(dir, "srv"),
    args: ["--backup-target", target, "--backup-account-key-file", key, "--backup-mode", "continuous",
           "--backup-ship-seconds", "1"],
  });
});

after(async () => {
  if (srv) await stopAndCheck(srv, assert);
  await stopAzurite(az);
  if (!process.env.ATREST_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

test("continuous mode into Azurite: restore --at a moment gives its documents", async () => {
  await waitShipped(0);
  assert.equal((await request(srv, { method: "POST", path: "/dbs", body: { id: "db1" } })).status, 201);
  const coll = { id: "items", partitionKey: { paths: ["/pk"], kind: "Hash" } };
  assert.equal((await request(srv, { method: "POST", path: "/dbs/db1/colls", body: coll })).status, 201);
  for (let i = 0; i < 20; i++) await create(srv, i, `first ${i}`);
  await sleep(30);
  const t1 = new Date();
  await sleep(30);
  for (let i = 20; i < 30; i++) await create(srv, i, `second ${i}`);
  const del = await request(srv, { method: "DELETE", path: "/dbs/db1/colls/items/docs/d3", headers: { "x-ms-documentdb-partitionkey": pk(3) } });
  assert.equal(del.status, 204, del.text);
  const st = await waitShipped(Date.now());
  assert.equal(st.continuous.gaps, 0);

  fs.mkdirSync(path.join(dir, "r"));
  const to = path.join(dir, "r", "data"), toKeys = path.join(dir, "r", "keys");
  const r = await cli(["backup", "restore", "--target", target, "--backup-account-key-file", key,
                       "--key-dir", srv.keyDir, "--at", t1.toISOString(), "--to", to, "--to-key-dir", toKeys]);
  assert.equal(r.status, 0, r.stderr);
  const rs = await startServer({ root: path.join(dir, "r") });
  try {
    assert.deepEqual(await ids(rs), Array.from({ length: 20 }, (_, i) => `d${i}`).sort());
  } finally {
    await stopAndCheck(rs, assert);
  }
});
