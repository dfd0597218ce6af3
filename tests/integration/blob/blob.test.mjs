// The blob store (src/blob/) against Azurite through the atrest CLI:
// round trips, a 20 MB multi-block upload, resume after a killed upload,
// retries on 5xx/408/429/resets (and none on other 4xx), Azurite stopped
// mid-upload, and damaged stored bytes caught on get.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ACCOUNT, cli, randomFile, sha256File, startAzurite, startProxy, stopAzurite, tmpdir, writeKey,
} from "./azurite.mjs";

const MiB = 1 << 20;
let az, dir, key;
const target = (port, container = "backups") => `azblob:http://127.0.0.1:${port}/${ACCOUNT}/${container}`;
const base = (port, container) => ["--target", target(port, container), "--account-key-file", key];

function stats(out) {
  const m = out.match(/bytes (\d+) blocks (\d+) sent (\d+) skipped (\d+) retries (\d+)/);
  assert.ok(m, `no stats in: ${out}`);
  return { bytes: +m[1], blocks: +m[2], sent: +m[3], skipped: +m[4], retries: +m[5] };
}

async function ok(args, opts) {
  const r = await cli(args, opts);
  assert.equal(r.status, 0, `atrest ${args.join(" ")}: ${r.stderr}`);
  return r;
}

before(async () => {
  dir = tmpdir("it");
  key = writeKey(dir);
  az = await startAzurite(path.join(dir, "azurite"));
});

after(async () => {
  await stopAzurite(az);
  if (!process.env.ATREST_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

describe("azblob target", () => {
  test("put, get, head, list, delete (container created on first put)", async () => {
    const f = randomFile(dir, "small.bin", 123457);
    const b = base(az.port, "roundtrip");
    let r = await cli(["blob", "ls", ...b]);
    assert.equal(r.status, 0, r.stderr); // no container yet: empty list
    assert.equal(r.stdout, "");
    await ok(["blob", "put", ...b, "db/one", f.path]);
    const empty = path.join(dir, "empty.bin");
    fs.writeFileSync(empty, "");
    await ok(["blob", "put", ...b, "db/two", empty]);
    await ok(["blob", "put", ...b, "media/x", f.path]);
    const out = path.join(dir, "out.bin");
    await ok(["blob", "get", ...b, "db/one", out]);
    assert.equal(sha256File(out), f.sha256);
    await ok(["blob", "get", ...b, "db/two", out]);
    assert.equal(fs.statSync(out).size, 0);
    r = await ok(["blob", "head", ...b, "db/one"]);
    assert.match(r.stdout, /size {4}123457/);
    assert.match(r.stdout, new RegExp(`sha256  ${f.sha256}`));
    r = await ok(["blob", "ls", ...b, "db/"]);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines.map((l) => l.trim().split(/\s+/)[2]), ["db/one", "db/two"]);
    assert.equal(lines[0].trim().split(/\s+/)[1], f.sha256);
    r = await ok(["blob", "get", ...b, "--range", "1000:50", "db/one", "-"]);
    assert.ok(r.stdoutBuf.equals(fs.readFileSync(f.path).subarray(1000, 1050)));
    await ok(["blob", "rm", ...b, "db/one"]);
    r = await cli(["blob", "rm", ...b, "db/one"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no blob 'db\/one'/);
    r = await cli(["blob", "get", ...b, "db/one", out]);
    assert.equal(r.status, 2);
    assert.ok(!fs.existsSync(out), "a failed get leaves no output file");
  });

  test("a wrong account key is refused (403) without retries", async () => {
    const bad = writeKey(fs.mkdtempSync(path.join(dir, "k")), Buffer.alloc(64, 7).toString("base64"));
    const proxy = await startProxy(az.port);
    try {
      const r = await cli(["blob", "ls", "--target", target(proxy.port), "--account-key-file", bad]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /403/);
      assert.equal(proxy.total(), 1, "403 is not retried");
    } finally {
      await proxy.close();
    }
  });

  test("20 MB in 1 MiB blocks; unchanged re-put sends nothing; ranges", async () => {
    const f = randomFile(dir, "twenty.bin", 20 * MiB + 12345);
    const proxy = await startProxy(az.port);
    try {
      const b = base(proxy.port, "big");
      let r = await ok(["blob", "put", ...b, "--block-size", String(MiB), "--stats", "twenty", f.path]);
      let s = stats(r.stdout);
      assert.equal(s.blocks, 21);
      assert.equal(s.sent, 21);
      assert.equal(proxy.counts.PutBlock, 21);
      assert.equal(proxy.counts.PutBlockList, 1);
      const out = path.join(dir, "twenty.out");
      await ok(["blob", "get", ...b, "twenty", out]);
      assert.equal(sha256File(out), f.sha256);
      r = await ok(["blob", "put", ...b, "--block-size", String(MiB), "--stats", "twenty", f.path]);
      s = stats(r.stdout);
      assert.equal(s.sent, 0);
      assert.equal(s.skipped, 21);
      await ok(["blob", "get", ...b, "--range", `${5 * MiB - 10}:${MiB + 20}`, "twenty", out]);
      const whole = fs.readFileSync(f.path);
      assert.ok(fs.readFileSync(out).equals(whole.subarray(5 * MiB - 10, 6 * MiB + 10)));
    } finally {
      await proxy.close();
    }
  });

  test("a killed upload leaves no blob; the next put resumes", async () => {
    const f = randomFile(dir, "resume.bin", 20 * MiB);
    let child;
    const proxy = await startProxy(az.port, () => null, (kind) => {
      if (kind === "PutBlock" && proxy.counts.PutBlock === 8 && child) child.kill("SIGKILL");
    });
    try {
      const b = base(proxy.port, "resume");
      const r1 = await cli(["blob", "put", ...b, "--block-size", String(MiB), "--stats", "resume", f.path], {
        onSpawn: (c) => { child = c; c.stdin.end(); },
      });
      assert.equal(r1.signal, "SIGKILL");
      let r = await cli(["blob", "head", ...b, "resume"]);
      assert.equal(r.status, 2, "an interrupted upload is not visible");
      const before = proxy.counts.PutBlock;
      r = await ok(["blob", "put", ...b, "--block-size", String(MiB), "--stats", "resume", f.path]);
      const s = stats(r.stdout);
      assert.equal(s.blocks, 20);
      assert.ok(s.skipped >= 8, `skipped ${s.skipped}`);
      assert.equal(s.sent + s.skipped, 20);
      assert.equal(proxy.counts.PutBlock - before, s.sent);
      const out = path.join(dir, "resume.out");
      await ok(["blob", "get", ...b, "resume", out]);
      assert.equal(sha256File(out), f.sha256);
    } finally {
      await proxy.close();
    }
  });

  test("retries: 503/500/408/429 and dropped connections, bounded; other 4xx fail at once", async () => {
    const f = randomFile(dir, "retry.bin", 3 * MiB);
    // The reset comes first, on a fresh connection: libcurl itself silently
    // re-sends a request whose reused keep-alive connection was closed.
    const faults = [{ reset: true }, { status: 503 }, { status: 500 }, { status: 429 }, { status: 408 }];
    let proxy = await startProxy(az.port, (req, kind, n) => (n <= faults.length ? faults[n - 1] : null));
    try {
      const b = base(proxy.port, "retry");
      const r = await ok(["blob", "put", ...b, "--block-size", String(MiB), "--backoff-ms", "20", "--stats",
        "r", f.path]);
      assert.equal(stats(r.stdout).retries, 5);
      const out = path.join(dir, "retry.out");
      await ok(["blob", "get", ...b, "r", out]);
      assert.equal(sha256File(out), f.sha256);
    } finally {
      await proxy.close();
    }
    // Always 503: gives up after --attempts, with a clear message.
    proxy = await startProxy(az.port, () => ({ status: 503 }));
    try {
      const t0 = Date.now();
      const r = await cli(["blob", "put", ...base(proxy.port, "retry"), "--attempts", "4", "--backoff-ms", "20",
        "r2", f.path]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /HTTP 503.*gave up after 4 attempts/);
      assert.equal(proxy.total(), 4);
      assert.ok(Date.now() - t0 < 10000);
    } finally {
      await proxy.close();
    }
    // A 400 is the caller's fault: not retried.
    proxy = await startProxy(az.port, () => ({ status: 400 }));
    try {
      const r = await cli(["blob", "put", ...base(proxy.port, "retry"), "--backoff-ms", "20", "r3", f.path]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /HTTP 400 Injected/);
      assert.equal(proxy.total(), 1);
    } finally {
      await proxy.close();
    }
    // A get whose body is cut retries and resumes: the proxy drops the first GET.
    proxy = await startProxy(az.port, (req, kind) => (kind === "GET" && !proxy.dropped ? (proxy.dropped = { reset: true }) : null));
    try {
      const out = path.join(dir, "retry2.out");
      await ok(["blob", "get", ...base(proxy.port, "retry"), "--backoff-ms", "20", "r", out]);
      assert.equal(sha256File(out), f.sha256);
    } finally {
      await proxy.close();
    }
  });

  test("Azurite stopped mid-upload: clear error; after a restart the put succeeds", async () => {
    const loc = path.join(dir, "azurite-restart");
    let az2 = await startAzurite(loc);
    const port = az2.port;
    try {
      const f = randomFile(dir, "stop.bin", 12 * MiB);
      const data = fs.readFileSync(f.path);
      const b = [...base(port, "stop"), "--block-size", String(MiB), "--attempts", "3", "--backoff-ms", "50"];
      const r = await cli(["blob", "put", ...b, "s", "-"], {
        onSpawn: async (c) => {
          c.stdin.write(data.subarray(0, 5 * MiB));
          await new Promise((res) => setTimeout(res, 1500)); // blocks 0-4 staged
          await stopAzurite(az2);
          c.stdin.end(data.subarray(5 * MiB));
        },
      });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /Put Block \d+ of 's'.*(Couldn't connect|onnection refused).*gave up after 3 attempts/);
      az2 = await startAzurite(loc, port);
      const r2 = await ok(["blob", "put", ...b, "--stats", "s", f.path]);
      console.log(`# after restart: ${r2.stdout.trim()}`);
      const out = path.join(dir, "stop.out");
      await ok(["blob", "get", ...b, "s", out]);
      assert.equal(sha256File(out), f.sha256);
    } finally {
      await stopAzurite(az2);
    }
  });

  test("bytes changed in Azurite's storage are caught on get", async () => {
    const canary = "atrest-blob-canary-" + Date.now();
    const f = randomFile(dir, "corrupt.bin", 300000, canary);
    const b = base(az.port, "corrupt");
    await ok(["blob", "put", ...b, "c", f.path]);
    // Find the canary in Azurite's files and flip one byte of it.
    let hit = null;
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (!hit) {
          const buf = fs.readFileSync(p);
          const at = buf.indexOf(canary);
          if (at >= 0) hit = { p, at };
        }
      }
    };
    walk(az.location);
    assert.ok(hit, "canary found in Azurite's storage");
    const fd = fs.openSync(hit.p, "r+");
    const one = Buffer.alloc(1);
    fs.readSync(fd, one, 0, 1, hit.at + 3);
    one[0] ^= 0x20;
    fs.writeSync(fd, one, 0, 1, hit.at + 3);
    fs.closeSync(fd);
    const out = path.join(dir, "corrupt.out");
    const r = await cli(["blob", "get", ...b, "c", out]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /SHA-256 check/);
    assert.ok(!fs.existsSync(out));
  });
});
