// Connection-level abuse: slow clients, half-closed and idle connections,
// bytes that are not TLS. The server must keep serving everyone else.
import net from "node:net";
import { after, before, test } from "node:test";
import { startServer, stopAndCheck } from "../lib/harness.mjs";
import { rawRequestBytes, readUntil, request, responseComplete, statusOf, tlsConnect } from "../lib/rawhttp.mjs";
import { assert, expectOk, makeContainer, pkHeader } from "./common.mjs";

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  assert.ok(srv.alive(), "atrestd died during the connection tests");
  await stopAndCheck(srv, assert);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function quickGet(what, maxMs = 3000) {
  const t0 = Date.now();
  const r = await request(srv, { path: "/", timeoutMs: maxMs + 2000 });
  const ms = Date.now() - t0;
  expectOk(r, 200, what);
  assert.ok(ms < maxMs, `${what}: took ${ms} ms`);
}

test("a client sending its request byte by byte is answered, and does not hold up others", async () => {
  const sock = await tlsConnect(srv);
  try {
    const bytes = rawRequestBytes(srv, { path: "/dbs" });
    const reply = readUntil(sock, responseComplete, 20000);
    let sent = 0;
    const others = [];
    for (const b of bytes) {
      sock.write(Buffer.from([b]));
      sent++;
      if (sent % 60 === 0) others.push(quickGet(`normal request while a slow client is at byte ${sent}`));
      await sleep(4);
    }
    await Promise.all(others);
    const { data } = await reply;
    assert.equal(statusOf(data), 200, `slow client got: ${data.toString("latin1").slice(0, 200)}`);
  } finally {
    sock.destroy();
  }
});

test("a half-closed connection (partial headers, then FIN) is closed by the server; others are served", async () => {
  const sock = await tlsConnect(srv);
  const bytes = rawRequestBytes(srv, { path: "/dbs" });
  sock.write(bytes.subarray(0, 40));
  sock.end(); // half-close: no more bytes from us
  const { data, ended } = await readUntil(sock, () => false, 10000);
  sock.destroy();
  assert.ok(ended, "the server kept a half-closed connection with a partial request open for 10 s");
  const s = statusOf(data);
  assert.ok(s === null || (s >= 400 && s < 500), `unexpected reply to a partial request: ${data.toString("latin1").slice(0, 100)}`);
  await quickGet("normal request after a half-closed connection");
});

test("a complete request followed by an immediate half-close still gets its response", async () => {
  const sock = await tlsConnect(srv);
  sock.end(rawRequestBytes(srv, { path: "/" }));
  const { data } = await readUntil(sock, responseComplete, 10000);
  sock.destroy();
  assert.equal(statusOf(data), 200, `got: ${data.toString("latin1").slice(0, 200)}`);
});

test("a request body that stops short of its Content-Length does not block the server", async () => {
  const sock = await tlsConnect(srv);
  const full = rawRequestBytes(srv, { method: "POST", path: "/dbs", body: { id: "partialbody" } });
  sock.write(full.subarray(0, full.length - 5)); // last bytes of the body never come
  await quickGet("normal request while a body is incomplete");
  sock.destroy();
  await sleep(200);
  const r = await request(srv, { path: "/dbs/partialbody" });
  assert.equal(r.status, 404, "a request with a truncated body was executed");
});

test("idle TLS connections and idle TCP connections do not block the server", async () => {
  const idle = [];
  for (let i = 0; i < 20; i++) idle.push(await tlsConnect(srv));
  const raw = [];
  for (let i = 0; i < 20; i++) {
    raw.push(await new Promise((res, rej) => {
      const s = net.connect({ host: srv.host, port: srv.port }, () => res(s));
      s.on("error", rej);
    }));
  }
  try {
    await quickGet("normal request with 40 idle connections open");
  } finally {
    idle.forEach((s) => s.destroy());
    raw.forEach((s) => s.destroy());
  }
});

function sendPlain(bytes, waitMs = 3000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: srv.host, port: srv.port });
    let buf = Buffer.alloc(0);
    let closed = false;
    s.on("connect", () => s.write(bytes));
    s.on("data", (d) => (buf = Buffer.concat([buf, d])));
    s.on("error", () => {});
    s.on("close", () => {
      closed = true;
      clearTimeout(t);
      resolve({ data: buf, closed });
    });
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: buf, closed });
    }, waitMs);
  });
}

test("garbage bytes (not TLS) get no HTTP answer and are dropped; then normal requests succeed", async () => {
  // [bytes, must the server close at once?] A handshake record that is
  // merely incomplete may be held open until the server's handshake timeout.
  const inputs = [
    [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true], // plaintext HTTP
    [Buffer.from("\x16\x03\x01\x00\x05hello", "latin1"), false], // handshake record announcing more
    [Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff)), true],
    [Buffer.alloc(70000, 0x16), true],
  ];
  for (const [b, mustClose] of inputs) {
    const { data, closed } = await sendPlain(b);
    assert.ok(!data.toString("latin1").startsWith("HTTP/"), "the server answered plaintext HTTP: it must serve HTTPS only");
    if (mustClose) assert.ok(closed, `the server kept a connection open 3 s after ${b.length} invalid bytes`);
    await quickGet(`normal request after ${b.length} garbage bytes`);
  }
});

test("many connections opened and dropped mid-handshake; the server stays up", async () => {
  const jobs = [];
  for (let i = 0; i < 50; i++) {
    jobs.push(new Promise((resolve) => {
      const s = net.connect({ host: srv.host, port: srv.port }, () => {
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        setTimeout(() => s.destroy(), i % 10);
      });
      s.on("error", () => {});
      s.on("close", resolve);
    }));
  }
  await Promise.all(jobs);
  await quickGet("normal request after 50 aborted handshakes");
  assert.ok(srv.alive());
});

test("keep-alive: several requests on one connection", async () => {
  const sock = await tlsConnect(srv);
  try {
    for (let i = 0; i < 3; i++) {
      const reply = readUntil(sock, responseComplete, 5000);
      sock.write(rawRequestBytes(srv, { path: "/" }));
      const { data } = await reply;
      assert.equal(statusOf(data), 200, `request ${i} on a kept-alive connection`);
      assert.ok(!/\r\nconnection:\s*close/i.test(data.toString("latin1")), "the server closes kept-alive connections");
    }
  } finally {
    sock.destroy();
  }
});

/* Responses in buf, one per method in order, or null while any is incomplete.
 * HEAD and 304 answers carry no body whatever their Content-Length says. */
function splitResponses(buf, methods) {
  const out = [];
  let at = 0;
  for (const method of methods) {
    const end = buf.indexOf("\r\n\r\n", at, "latin1");
    if (end < 0) return null;
    const head = buf.subarray(at, end).toString("latin1");
    const status = Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
    const len = Number(head.match(/\r\ncontent-length:\s*(\d+)/i)?.[1] ?? 0);
    const bodyLen = method === "HEAD" || status === 304 ? 0 : len;
    if (buf.length < end + 4 + bodyLen) return null;
    out.push({ status, head, body: buf.subarray(end + 4, end + 4 + bodyLen) });
    at = end + 4 + bodyLen;
  }
  return at === buf.length ? out : null;
}

async function pipelined(sock, reqs, timeoutMs, beforeRead) {
  const methods = reqs.map((r) => r.method || "GET");
  if (beforeRead) sock.pause();
  sock.write(Buffer.concat(reqs.map((r) => rawRequestBytes(srv, r))));
  if (beforeRead) {
    await beforeRead();
    sock.resume();
  }
  const { data } = await readUntil(sock, (b) => splitResponses(b, methods) !== null, timeoutMs);
  const got = splitResponses(data, methods);
  assert.ok(got, `incomplete or extra bytes after ${reqs.length} pipelined requests: got ${data.length} bytes`);
  return got;
}

test("pipelined requests in one write are answered in order, each whole (HEAD, 304, 404 among them)", async () => {
  const { docs } = await makeContainer(srv);
  const made = await request(srv, { method: "POST", path: docs, headers: pkHeader(["p"]), body: { id: "small", pk: "p", v: 1 } });
  expectOk(made, 201, "create");
  const doc = `${docs}/small`;
  const sock = await tlsConnect(srv);
  try {
    for (let round = 0; round < 3; round++) {
      const got = await pipelined(
        sock,
        [
          { path: doc, extraHeaders: pkHeader(["p"]) },
          { method: "HEAD", path: doc, extraHeaders: pkHeader(["p"]) },
          { path: doc, extraHeaders: { ...pkHeader(["p"]), "if-none-match": made.json._etag } },
          { path: `${docs}/missing`, extraHeaders: pkHeader(["p"]) },
          { path: "/" },
        ],
        10000
      );
      assert.deepEqual(got.map((r) => r.status), [200, 200, 304, 404, 200], `round ${round}`);
      assert.equal(JSON.parse(got[0].body.toString()).v, 1);
      assert.equal(got[1].body.length, 0);
      assert.equal(typeof JSON.parse(got[3].body.toString()).message, "string");
      assert.ok(JSON.parse(got[4].body.toString()).id !== undefined, "the account answer");
    }
  } finally {
    sock.destroy();
  }
});

test("large responses pipelined to a client that stops reading arrive whole once it reads again", async () => {
  const { docs } = await makeContainer(srv);
  const filler = "x".repeat(1_500_000);
  expectOk(
    await request(srv, { method: "POST", path: docs, headers: pkHeader(["p"]), body: { id: "big", pk: "p", filler } }),
    201,
    "create a 1.5 MB document"
  );
  const sock = await tlsConnect(srv);
  try {
    const get = { path: `${docs}/big`, extraHeaders: pkHeader(["p"]) };
    const got = await pipelined(sock, [get, get, { path: "/" }, get], 30000, () => sleep(1500));
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200, 200]);
    for (const i of [0, 1, 3]) assert.equal(JSON.parse(got[i].body.toString()).filler, filler, `response ${i}`);
    const again = await pipelined(sock, [{ path: "/" }], 5000);
    assert.equal(again[0].status, 200, "the connection still serves");
  } finally {
    sock.destroy();
  }
});
