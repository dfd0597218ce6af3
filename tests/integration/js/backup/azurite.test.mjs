// Backups of a running atrestd into Azure Blob Storage (Azurite), end to end
// (docs/backup.md, docs/blob.md): documents written through @azure/cosmos
// with a canary, `atrest backup now` into an azblob: target, more writes,
// then restore from Azurite into a new account served by atrestd: exactly the
// documents at backup time. Faults on the way: injected 503s and a dropped
// connection are retried and the backup completes; Azurite stopped mid-way
// fails the backup with a clear error and leaves the previous one listed,
// authentic and restorable. Afterwards no canary appears anywhere in
// Azurite's storage folder.
//
// Environment: ATREST_BIN (atrestd), ATREST_CLI (atrest); Azurite from
// tests/integration/blob/node_modules (the atrest_blob_npm fixture).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { after, before, test } from "node:test";
import "../../lib/webcrypto.mjs";
import { CosmosClient } from "@azure/cosmos";
import { REPO_ROOT, startServer, stopAndCheck } from "../../lib/harness.mjs";
import { ACCOUNT, startAzurite, startProxy, stopAzurite, writeKey } from "../../blob/azurite.mjs";

const CLI = process.env.ATREST_CLI || path.join(REPO_ROOT, "build", "atrest");
const CANARY = `azc${crypto.randomBytes(12).toString("hex")}`;
let root, az, proxy, keyFile, srv, client, container, target;
let fault = null; // policy of the proxy in front of Azurite: null forwards

// Asynchronous: the fault proxy runs in this process and must keep serving.
function cli(args) {
  return new Promise((resolve) => {
    const p = spawn(CLI, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code, out, err }));
  });
}

const doc = (i) => ({ id: `d${i}`, pk: `p${i % 3}`, n: i, text: `${CANARY} document ${i}`, pad: "z".repeat(2000) });
const backupNow = () => cli(["backup", "now", "--endpoint", srv.endpoint, "--master-key", srv.masterKey, "--cacert", srv.certPath]);
const list = () => cli(["backup", "list", "--target", target, "--backup-account-key-file", keyFile, "--key-dir", srv.keyDir]);

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

before(async () => {
  root = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "atrest-bkaz-"));
  keyFile = writeKey(root);
  az = await startAzurite(path.join(root, "azurite"));
  proxy = await startProxy(az.port, (req, kind, n) => (fault ? fault(req, kind, n) : null));
  target = `azblob:http://127.0.0.1:${proxy.port}/${ACCOUNT}/backups`;
  srv = await startServer({ root, args: ["--backup-target", target, "--backup-account-key-file", keyFile] });
  client = new CosmosClient({ endpoint: srv.endpoint, key: srv.masterKey, agent: new https.Agent({ ca: srv.cert }) });
  const { database } = await client.databases.create({ id: "db" });
  ({ container } = await database.containers.create({ id: "items", partitionKey: { paths: ["/pk"] } }));
});

after(async () => {
  if (srv) await stopAndCheck(srv, assert);
  if (proxy) await proxy.close();
  await stopAzurite(az);
  if (!process.env.ATREST_KEEP_TMP) fs.rmSync(root, { recursive: true, force: true });
});

let firstId;

test("backup into Azurite through 503s and a dropped connection, then restore from it", async () => {
  for (let i = 0; i < 300; i += 50) {
    const ops = [];
    for (let j = i; j < i + 50; j++) ops.push({ operationType: "Create", resourceBody: doc(j) });
    for (const r of await container.items.bulk(ops)) assert.equal(r.statusCode, 201);
  }
  // every 4th upload request fails once: 503, 500, then a reset
  const seen = new Set();
  fault = (req, kind, n) => {
    if (req.method !== "PUT" || n % 4 || seen.has(n)) return null;
    seen.add(n);
    return seen.size % 3 === 0 ? { reset: true } : { status: seen.size % 3 === 1 ? 503 : 500 };
  };
  const r = await backupNow();
  fault = null;
  assert.equal(r.code, 0, r.err);
  assert.ok(seen.size >= 2, `faults were injected (${seen.size})`);
  firstId = r.out.trim();
  assert.match(firstId, /^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
  for (let i = 300; i < 350; i++) await container.items.create(doc(i));

  const l = await list();
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, new RegExp(`${firstId}.*authentic`));
  const v = await cli(["backup", "verify", "--target", target, "--backup-account-key-file", keyFile, "--key-dir", srv.keyDir, "--backup", firstId]);
  assert.equal(v.code, 0, v.err);

  const rroot = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "atrest-bkazr-"));
  const rr = await cli(["backup", "restore", "--target", target, "--backup-account-key-file", keyFile, "--key-dir", srv.keyDir,
    "--backup", firstId, "--to", path.join(rroot, "data"), "--to-key-dir", path.join(rroot, "keys")]);
  assert.equal(rr.code, 0, rr.err);
  const rs = await startServer({ root: rroot });
  try {
    const c2 = new CosmosClient({ endpoint: rs.endpoint, key: rs.masterKey, agent: new https.Agent({ ca: rs.cert }) });
    const { resources } = await c2.database("db").container("items").items.query("SELECT VALUE c.id FROM c").fetchAll();
    assert.equal(resources.length, 300);
    assert.deepEqual(new Set(resources), new Set(Array.from({ length: 300 }, (_, i) => `d${i}`)));
    const { resource } = await c2.database("db").container("items").item("d7", "p1").read();
    assert.equal(resource.text, doc(7).text);
    c2.dispose();
  } finally {
    await stopAndCheck(rs, assert);
  }
});

test("Azurite stopped during a backup: a clear error, and the last good backup stays", async () => {
  const port = az.port;
  let stopped = false;
  fault = (req, kind) => {
    // stop Azurite at the first store upload: the manifest is never written
    if (!stopped && req.method === "PUT") {
      stopped = true;
      stopAzurite(az);
      return { reset: true };
    }
    return null;
  };
  const r = await backupNow();
  fault = null;
  assert.equal(r.code, 2, `the backup failed: ${r.out} ${r.err}`);
  assert.match(r.err, /backup failed/i);
  az = await startAzurite(path.join(root, "azurite"), port);
  const l = await list();
  assert.equal(l.code, 0, l.err);
  const ids = l.out.split("\n").filter((x) => /^\d{8}T/.test(x.trim())).map((x) => x.trim().split(/\s+/)[0]);
  assert.deepEqual(ids, [firstId], "only the good backup is listed");
  const v = await cli(["backup", "verify", "--target", target, "--backup-account-key-file", keyFile, "--key-dir", srv.keyDir]);
  assert.equal(v.code, 0, v.err);
  // and the next backup works again
  const r2 = await backupNow();
  assert.equal(r2.code, 0, r2.err);
});

test("no canary anywhere in Azurite's storage folder", () => {
  const needles = [Buffer.from(CANARY, "utf8"), Buffer.from(CANARY, "utf16le")];
  const files = walk(path.join(root, "azurite"));
  assert.ok(files.length >= 3, `Azurite stored files (${files.length})`);
  let bytes = 0;
  for (const f of files) {
    const b = fs.readFileSync(f);
    bytes += b.length;
    for (const n of needles) assert.equal(b.indexOf(n), -1, `canary found in ${f}`);
  }
  assert.ok(bytes > 300 * 2000, `the backups' bytes are there (${bytes})`);
});
