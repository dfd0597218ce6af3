// Backups end to end (docs/backup.md): documents written through
// @azure/cosmos, `atrest backup now` against the running server, more
// writes, then `atrest backup restore` into a new data folder and key
// folder; atrestd started on the restored account serves exactly the
// documents that existed at backup time. No canary appears in the backup
// folder. Faults: a flipped byte and a truncation in a store blob and an
// edited manifest (re-put with a valid blob checksum) make verify and
// restore refuse with exit 1, leaving no restored folders; a backup that
// fails (target folder made unwritable) leaves the previous one listed and
// intact; a read-only key cannot ask for a backup.
//
// Environment: ATREST_BIN (atrestd), ATREST_CLI (atrest).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { after, before, test } from "node:test";
import "../../lib/webcrypto.mjs";
import { CosmosClient } from "@azure/cosmos";
import { walk, runTool } from "../../lib/files.mjs";
import { REPO_ROOT, startServer, stopAndCheck } from "../../lib/harness.mjs";

const CLI = process.env.ATREST_CLI || path.join(REPO_ROOT, "build", "atrest");
const hex = (n) => crypto.randomBytes(n).toString("hex");
const CANARY = `bkc${hex(12)}`;
const RO_KEY = crypto.randomBytes(64).toString("base64");

let srv, client, container, bkdir, target, firstId;

const cli = (args) => runTool(CLI, args);

function backupNow(key = srv.masterKey) {
  return cli(["backup", "now", "--endpoint", srv.endpoint, "--master-key", key, "--cacert", srv.certPath]);
}

function doc(i) {
  return { id: `d${i}`, pk: `p${i % 3}`, n: i, text: `${CANARY} document ${i}` };
}

before(async () => {
  const root = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "atrest-bk-"));
  bkdir = path.join(root, "bk");
  target = `file:${bkdir}`;
  srv = await startServer({ root, readonlyKey: RO_KEY, args: ["--backup-target", target, "--backup-retain", "5"] });
  client = new CosmosClient({ endpoint: srv.endpoint, key: srv.masterKey, agent: new https.Agent({ ca: srv.cert }) });
  const { database } = await client.databases.create({ id: `db${CANARY}` });
  ({ container } = await database.containers.create({ id: "items", partitionKey: { paths: ["/pk"] } }));
});

after(async () => {
  if (srv) await stopAndCheck(srv, assert);
});

async function restoreAndRead(id, expectIds, absentIds) {
  const root = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "atrest-bkr-"));
  const args = ["backup", "restore", "--target", target, "--key-dir", srv.keyDir, "--to", path.join(root, "data"), "--to-key-dir", path.join(root, "keys")];
  if (id) args.push("--backup", id);
  const r = cli(args);
  assert.equal(r.code, 0, `restore failed: ${r.err}`);
  assert.match(r.out, /restored backup/);
  const rs = await startServer({ root });
  try {
    const c2 = new CosmosClient({ endpoint: rs.endpoint, key: rs.masterKey, agent: new https.Agent({ ca: rs.cert }) });
    const cont = c2.database(`db${CANARY}`).container("items");
    const { resources } = await cont.items.query("SELECT c.id FROM c").fetchAll();
    assert.deepEqual(resources.map((d) => d.id).sort(), [...expectIds].sort());
    // through the index: at backup time its entries were in the index log
    // (docs/query.md), which the backup carries like any table
    const inP1 = expectIds.filter((i) => Number(i.slice(1)) % 3 === 1).sort();
    const byIndex = await cont.items.query("SELECT VALUE c.id FROM c WHERE c.pk = 'p1'", { populateQueryMetrics: true }).fetchAll();
    assert.deepEqual(byIndex.resources.sort(), inP1);
    const counted = await cont.items.query("SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'p1'").fetchAll();
    assert.deepEqual(counted.resources, [inP1.length]);
    for (const i of expectIds.slice(0, 3)) {
      const n = Number(i.slice(1));
      const { resource } = await cont.item(i, `p${n % 3}`).read();
      assert.equal(resource.text, doc(n).text);
    }
    for (const i of absentIds) {
      const n = Number(i.slice(1));
      const { statusCode } = await cont.item(i, `p${n % 3}`).read().catch((e) => e);
      assert.equal(statusCode, 404);
    }
    const { resources: colls } = await c2.database(`db${CANARY}`).containers.readAll().fetchAll();
    assert.deepEqual(colls.map((c) => c.id), ["items"]);
  } finally {
    await stopAndCheck(rs, assert);
  }
}

test("backup now, write more, restore: exactly the documents at backup time", async () => {
  for (let i = 0; i < 40; i++) await container.items.create(doc(i));
  const r = backupNow();
  assert.equal(r.code, 0, r.err);
  firstId = r.out.trim();
  assert.match(firstId, /^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
  for (let i = 40; i < 60; i++) await container.items.create(doc(i));
  await container.item("d0", "p0").delete();
  await client.database(`db${CANARY}`).containers.create({ id: "later" });

  const l = cli(["backup", "list", "--target", target, "--key-dir", srv.keyDir]);
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, new RegExp(`${firstId}.*authentic`));
  const v = cli(["backup", "verify", "--target", target, "--key-dir", srv.keyDir, "--backup", firstId]);
  assert.equal(v.code, 0, v.err);
  assert.match(v.out, /OK/);

  const ids = Array.from({ length: 40 }, (_, i) => `d${i}`);
  await restoreAndRead(firstId, ids, ["d40", "d59"]);
});

test("no canary in the backup folder", () => {
  const needles = [Buffer.from(CANARY, "utf8"), Buffer.from(CANARY, "utf16le")];
  const files = walk(bkdir);
  assert.ok(files.length >= 3);
  for (const f of files) {
    const b = fs.readFileSync(f);
    for (const n of needles) assert.equal(b.indexOf(n), -1, `canary found in ${f}`);
  }
});

test("a read-only key cannot ask for a backup", () => {
  const r = backupNow(RO_KEY);
  assert.equal(r.code, 2);
  assert.match(r.err, /403|read-only/);
});

function blobFile(id, suffix) {
  return path.join(bkdir, `${id}%2F${suffix}.blob`);
}

function expectRefused(dir, id, words) {
  const t = `file:${dir}`;
  const v = cli(["backup", "verify", "--target", t, "--key-dir", srv.keyDir, "--backup", id]);
  assert.equal(v.code, 1, `verify: ${v.err}`);
  assert.match(v.err, words);
  const root = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "atrest-bkf-"));
  const to = path.join(root, "data"), toKeys = path.join(root, "keys");
  const r = cli(["backup", "restore", "--target", t, "--key-dir", srv.keyDir, "--backup", id, "--to", to, "--to-key-dir", toKeys]);
  assert.equal(r.code, 1, `restore: ${r.err}`);
  assert.match(r.err, words);
  assert.equal(fs.existsSync(to), false, "a refused restore left a data folder");
  assert.equal(fs.existsSync(toKeys), false, "a refused restore left a key folder");
  fs.rmSync(root, { recursive: true, force: true });
}

function copyBackups(tag) {
  const dir = path.join(srv.root, `bk-${tag}`);
  fs.cpSync(bkdir, dir, { recursive: true });
  return dir;
}

test("a flipped byte in a store blob: verify and restore refuse", () => {
  const dir = copyBackups("flip");
  const f = path.join(dir, path.basename(blobFile(firstId, "s0001")));
  const b = fs.readFileSync(f);
  b[80 + 32 + 5000] ^= 0x20; // inside chunk 0 (after the blob and store headers)
  fs.writeFileSync(f, b);
  expectRefused(dir, firstId, /failed authentication|SHA-256|checksum|integrity/i);
});

test("a truncated store blob: verify and restore refuse", () => {
  const dir = copyBackups("trunc");
  const f = path.join(dir, path.basename(blobFile(firstId, "s0001")));
  const b = fs.readFileSync(f);
  fs.writeFileSync(f, b.subarray(0, b.length - 4096));
  expectRefused(dir, firstId, /truncat|length|size|damaged/i);
});

test("an edited manifest (valid blob checksum): verify and restore refuse", () => {
  const dir = copyBackups("manifest");
  const t = `file:${dir}`;
  const tmp = path.join(srv.root, "manifest.bin");
  const name = `${firstId}/manifest`;
  assert.equal(cli(["blob", "get", "--target", t, name, tmp]).code, 0);
  const b = fs.readFileSync(tmp);
  b[50] ^= 0x01; // the creation time
  fs.writeFileSync(tmp, b);
  assert.equal(cli(["blob", "put", "--target", t, name, tmp]).code, 0);
  expectRefused(dir, firstId, /manifest failed authentication/);
});

test("a failed backup leaves the previous one listed and intact", (t) => {
  const lock = process.getuid && process.getuid() === 0 ? ["chattr", "+i"] : ["chmod", "0500"];
  const unlock = lock[0] === "chattr" ? ["chattr", "-i"] : ["chmod", "0700"];
  const l = spawnSync(lock[0], [lock[1], bkdir]);
  if (l.status !== 0) {
    t.skip(`cannot make the target unwritable (${lock.join(" ")})`);
    return;
  }
  let r;
  try {
    r = backupNow();
  } finally {
    spawnSync(unlock[0], [unlock[1], bkdir]);
  }
  assert.equal(r.code, 2);
  assert.match(r.err, /backup failed/i);
  const l2 = cli(["backup", "list", "--target", target, "--key-dir", srv.keyDir]);
  assert.equal(l2.code, 0, l2.err);
  assert.match(l2.out, new RegExp(`${firstId}.*authentic`));
  const v = cli(["backup", "verify", "--target", target, "--key-dir", srv.keyDir, "--backup", firstId]);
  assert.equal(v.code, 0, v.err);
  // and the server still backs up once the folder is writable again
  const r2 = backupNow();
  assert.equal(r2.code, 0, r2.err);
});
