// Data-key rotation under load (docs/kms.md, "Rotating data keys"), through
// @azure/cosmos 4.9.3 and the real CLI:
//  - documents are written while `atrest keys rotate-data-keys` rotates
//    every store's DEKs; the re-encryption is throttled so that a SIGKILL
//    lands in the middle of it (some pages on the new version, some on
//    the old one, as `atrest keys status` shows);
//  - after the restart the re-encryption resumes by itself and completes:
//    every acknowledged write reads back, `atrest verify` passes, every
//    page on disk is under the new version and the keyring holds no older
//    DEK version (the old key is destroyed: nothing can decrypt with it);
//  - `rotate-data-keys --wait` on a running server follows a second
//    rotation to its end; a read-only key may read the state, not rotate.
//
// Environment: ATREST_BIN (atrestd), ATREST_CLI (atrest).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import "../../lib/webcrypto.mjs";
import { CosmosClient } from "@azure/cosmos";
import { REPO_ROOT, startServer } from "../../lib/harness.mjs";

const CLI = process.env.ATREST_CLI || path.join(REPO_ROOT, "build", "atrest");
const RO_KEY = crypto.randomBytes(64).toString("base64");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "atrest-it-dek-"));
let srv = null;
let client = null;

function cli(args) {
  const r = spawnSync(CLI, args, { encoding: "utf8", timeout: 300000 });
  return { code: r.status, out: r.stdout || "", err: r.stderr || "" };
}

function cliAsync(args) {
  return new Promise((resolve) => {
    const p = spawn(CLI, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start(args) {
  srv = await startServer({ root, readonlyKey: RO_KEY, args });
  client = new CosmosClient({ endpoint: srv.endpoint, key: srv.masterKey, agent: new https.Agent({ ca: srv.cert, keepAlive: true }) });
  return client.database("db").container("c");
}

const admin = (key = srv.masterKey) => ["--endpoint", srv.endpoint, "--master-key", key, "--cacert", srv.certPath];

/** `atrest keys status` per store: { name: { oldest, current, pct, versions: {v: pages} } }. */
function storesStatus() {
  const r = cli(["keys", "status", "--data-dir", srv.dataDir, "--key-dir", srv.keyDir]);
  assert.equal(r.code, 0, r.out + r.err);
  const stores = {};
  for (const line of r.out.split("\n")) {
    const m = line.match(/^\s+(\S+)\s+DEK versions outer (\d+)\.\.(\d+); pages((?: v\d+:\d+)*); ([\d.]+)% on the current version/);
    if (!m) continue;
    const versions = {};
    for (const [, v, n] of m[4].matchAll(/v(\d+):(\d+)/g)) versions[v] = Number(n);
    stores[m[1]] = { oldest: Number(m[2]), current: Number(m[3]), pct: Number(m[5]), versions };
  }
  assert.ok(Object.keys(stores).length >= 2, `store lines in:\n${r.out}`);
  return stores;
}

after(() => {
  if (srv && srv.alive()) srv.proc.kill("SIGKILL");
  if (!process.env.ATREST_KEEP_TMP) fs.rmSync(root, { recursive: true, force: true });
});

test("DEK rotation under load survives SIGKILL mid-re-encryption and destroys the old DEKs", async () => {
  let c = await start(["--reencrypt-mbps", "1"]);
  await client.databases.create({ id: "db" });
  await client.database("db").containers.create({ id: "c", partitionKey: { paths: ["/pk"] } });
  const pad = "p".repeat(900);
  for (let i = 0; i < 3000; i += 100) {
    const ops = [];
    for (let j = i; j < i + 100; j++) ops.push({ operationType: "Create", resourceBody: { id: `base${j}`, pk: `k${j % 7}`, n: j, pad } });
    for (const r of await c.items.bulk(ops)) assert.equal(r.statusCode, 201);
  }
  // a second container, dropped while the re-encryption runs
  const gone = (await client.database("db").containers.create({ id: "gone", partitionKey: { paths: ["/pk"] } })).container;
  const gops = [];
  for (let j = 0; j < 100; j++) gops.push({ operationType: "Create", resourceBody: { id: `g${j}`, pk: "g", pad } });
  for (const r of await gone.items.bulk(gops)) assert.equal(r.statusCode, 201);
  let before = storesStatus();
  for (const s of Object.values(before)) assert.deepEqual([s.oldest, s.current, s.pct], [1, 1, 100]);

  // a steady write load; acked holds every id the server acknowledged
  const acked = [];
  let load = true, n = 0;
  const loader = (async () => {
    while (load) {
      const id = `w${n++}`;
      try {
        await c.items.create({ id, pk: `k${n % 7}`, n, pad });
        acked.push(id);
      } catch (e) {
        if (load) throw e;
      }
    }
  })().catch((e) => e);

  const rot = cli(["keys", "rotate-data-keys", ...admin()]);
  assert.equal(rot.code, 0, rot.err);
  // wait until the re-encryption is part way: both versions on disk
  let mid = null;
  for (let i = 0; i < 200; i++) {
    await sleep(100);
    const st = storesStatus();
    const pages = (s) => Object.values(s.versions).reduce((a, b) => a + b, 0);
    const coll = Object.values(st).reduce((a, b) => (pages(b) > pages(a) ? b : a)); // container c
    if (coll.current === 2 && (coll.versions["2"] || 0) > 50 && (coll.versions["1"] || 0) > 50) {
      mid = st;
      break;
    }
  }
  assert.ok(mid, "the re-encryption was seen half way (pages under versions 1 and 2)");
  const t0 = Date.now();
  await gone.delete();
  assert.ok(Date.now() - t0 < 3000, `a container drop during the re-encryption took ${Date.now() - t0} ms`);
  await sleep(500); // more writes under the new keys while it goes on
  srv.proc.kill("SIGKILL");
  await srv.stop({ signal: "SIGKILL" });
  load = false;
  client.dispose();
  await loader;
  assert.ok(acked.length > 20, `writes were acknowledged during the rotation (${acked.length})`);

  // restart without a throttle: the re-encryption resumes by itself
  c = await start(["--reencrypt-mbps", "0"]);
  let done = null;
  for (let i = 0; i < 600 && !done; i++) {
    const st = storesStatus();
    if (Object.values(st).every((s) => s.oldest === 2 && s.current === 2 && s.pct === 100)) done = st;
    else await sleep(100);
  }
  assert.ok(done, "after the restart every store is on version 2 only, with its version 1 destroyed");
  for (const s of Object.values(done)) assert.deepEqual(Object.keys(s.versions), ["2"], "no page on disk under version 1");

  // every acknowledged write is there
  const { resources } = await c.items.query("SELECT VALUE c.id FROM c", { maxItemCount: -1 }).fetchAll();
  const have = new Set(resources);
  for (let j = 0; j < 3000; j++) assert.ok(have.has(`base${j}`), `base${j}`);
  for (const id of acked) assert.ok(have.has(id), `acknowledged write ${id} is present`);
  const { resource: one } = await c.item(acked[acked.length - 1], `k${(Number(acked[acked.length - 1].slice(1)) + 1) % 7}`).read();
  assert.ok(one && one.pad === pad);

  // a read-only key reads the state but may not rotate
  const ro = cli(["keys", "rotate-data-keys", ...admin(RO_KEY)]);
  assert.equal(ro.code, 2);
  assert.match(ro.err, /403/);

  // a second rotation, followed to its end with --wait
  const w = await cliAsync(["keys", "rotate-data-keys", ...admin(), "--wait"]);
  assert.equal(w.code, 0, w.err);
  assert.match(w.err, /old ones are destroyed/);
  for (const s of Object.values(storesStatus())) assert.deepEqual([s.oldest, s.current, s.pct, Object.keys(s.versions)], [3, 3, 100, ["3"]]);
  // every write acknowledged, plus at most the one in flight at the kill
  const count = (await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll()).resources[0];
  assert.ok(count >= 3000 + acked.length && count <= 3001 + acked.length, `${count} documents, ${acked.length} acknowledged writes`);

  client.dispose();
  const r = await srv.stop();
  assert.equal(r.sanitizer, null, `sanitizer report:\n${r.sanitizer}`);
  assert.deepEqual({ code: r.code, forced: r.forced }, { code: 0, forced: false });
  const v = cli(["verify", "--data-dir", srv.dataDir, "--key-dir", srv.keyDir]);
  assert.equal(v.code, 0, v.out + v.err);

  // no atrestd on the folder: the CLI rotates and re-encrypts it itself
  const off = cli(["keys", "rotate-data-keys", "--data-dir", srv.dataDir, "--key-dir", srv.keyDir]);
  assert.equal(off.code, 0, off.err);
  assert.match(off.err, /old ones are destroyed/);
  for (const s of Object.values(storesStatus())) assert.deepEqual([s.oldest, s.current, s.pct, Object.keys(s.versions)], [4, 4, 100, ["4"]]);
  const v2 = cli(["verify", "--data-dir", srv.dataDir, "--key-dir", srv.keyDir]);
  assert.equal(v2.code, 0, v2.out + v2.err);
  // and atrestd serves it afterwards
  c = await start([]);
  assert.equal((await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll()).resources[0], count);
  client.dispose();
  await srv.stop();
});

test("a DEK that reaches its encryption limit is replaced, and its pages re-encrypted on their own; an older backup still restores", async () => {
  const root2 = fs.mkdtempSync(path.join(os.tmpdir(), "atrest-it-dek2-"));
  const bk = path.join(root2, "backups");
  const s2 = await startServer({ root: root2, args: ["--dek-max-encryptions", "4000", "--reencrypt-mbps", "0", "--backup-target", `file:${bk}`] });
  const cl = new CosmosClient({ endpoint: s2.endpoint, key: s2.masterKey, agent: new https.Agent({ ca: s2.cert, keepAlive: true }) });
  try {
    await cl.databases.create({ id: "db" });
    const { container } = await cl.database("db").containers.create({ id: "c", partitionKey: { paths: ["/pk"] } });
    const pad = "q".repeat(1500);
    const status = () => {
      const r = cli(["keys", "status", "--data-dir", s2.dataDir, "--key-dir", s2.keyDir]);
      assert.equal(r.code, 0, r.out + r.err);
      const m = [...r.out.matchAll(/^\s+c-\d+\s+DEK versions outer (\d+)\.\.(\d+); pages((?: v\d+:\d+)*); ([\d.]+)% on the current/gm)][0];
      return { oldest: Number(m[1]), current: Number(m[2]), pct: Number(m[4]), versions: m[3].trim() };
    };
    // write (updating the same documents, so the file stays well under
    // 4000 pages) until the container's DEK has sealed 4000 pages
    const first = (await container.items.bulk([{ operationType: "Create", resourceBody: { id: "before", pk: "k0", pad } }]))[0];
    assert.equal(first.statusCode, 201);
    const b = cli(["backup", "now", "--endpoint", s2.endpoint, "--master-key", s2.masterKey, "--cacert", s2.certPath]);
    assert.equal(b.code, 0, b.err);
    // ask through the folder's control socket (no endpoint, no key)
    const viaSock = cli(["keys", "rotate-data-keys", "--data-dir", s2.dataDir, "--wait"]);
    assert.equal(viaSock.code, 0, viaSock.err);
    assert.match(viaSock.err, /old ones are destroyed/);
    let st = status(), rounds = 0;
    assert.deepEqual([st.oldest, st.current], [2, 2], "rotated through the control socket");
    for (; rounds < 100 && st.current < 3; rounds++) {
      const ops = [];
      for (let j = 0; j < 100; j++) ops.push({ operationType: "Upsert", resourceBody: { id: `d${(rounds * 100 + j) % 1000}`, pk: `k${j % 3}`, n: rounds, pad } });
      for (const r of await container.items.bulk(ops)) assert.ok(r.statusCode === 200 || r.statusCode === 201);
      st = status();
    }
    for (let i = 0; i < 300; i++) {
      st = status();
      if (st.current >= 3 && st.oldest === st.current && st.pct === 100) break;
      await sleep(100);
    }
    assert.ok(st.current >= 3, `the container's DEK was replaced after 4000 encryptions (${JSON.stringify(st)})`);
    assert.equal(st.oldest, st.current, `older DEK versions destroyed (${JSON.stringify(st)})`);
    assert.equal(st.pct, 100);
    const { resources } = await container.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
    assert.equal(resources[0], 1 + Math.min(1000, rounds * 100));
    // the backup taken under the old DEKs restores after they are destroyed
    const root3 = fs.mkdtempSync(path.join(os.tmpdir(), "atrest-it-dek3-"));
    const to = path.join(root3, "data"), toKeys = path.join(root3, "keys");
    const r = cli(["backup", "restore", "--target", `file:${bk}`, "--key-dir", s2.keyDir, "--to", to, "--to-key-dir", toKeys]);
    assert.equal(r.code, 0, r.err);
    const s3 = await startServer({ root: root3 });
    const cl3 = new CosmosClient({ endpoint: s3.endpoint, key: s3.masterKey, agent: new https.Agent({ ca: s3.cert, keepAlive: true }) });
    const { resources: ids } = await cl3.database("db").container("c").items.query("SELECT VALUE c.id FROM c").fetchAll();
    assert.deepEqual(ids, ["before"], "the restored account holds what existed at backup time");
    cl3.dispose();
    await s3.stop();
    s3.cleanup();
  } finally {
    cl.dispose();
    const r = await s2.stop();
    assert.equal(r.sanitizer, null, `sanitizer report:\n${r.sanitizer}`);
    const v = cli(["verify", "--data-dir", s2.dataDir, "--key-dir", s2.keyDir]);
    assert.equal(v.code, 0, v.out + v.err);
    if (!process.env.ATREST_KEEP_TMP) fs.rmSync(root2, { recursive: true, force: true });
  }
});
