// Bad requests over raw HTTPS: malformed bodies, invalid ids, partition key
// headers, oversized bodies. Each fails alone with a Cosmos error body; the
// server keeps serving.
import { after, before, test } from "node:test";
import { startServer, stopAndCheck } from "../lib/harness.mjs";
import { rawRequestBytes, request, responseComplete, statusOf, tlsConnect } from "../lib/rawhttp.mjs";
import { assert, expectError, expectOk, makeContainer, pkHeader, uid } from "./common.mjs";

let srv;
let c;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
before(async () => {
  srv = await startServer();
  c = await makeContainer(srv);
});
after(async () => {
  assert.ok(srv.alive(), "atrestd died during the request tests");
  await stopAndCheck(srv, assert);
});

const createDoc = (body, pk = ["p"], extra = {}) =>
  request(srv, { method: "POST", path: c.docs, body, headers: { ...pkHeader(pk), ...extra } });

test("a well-formed create and read work (baseline)", async () => {
  const r = await createDoc({ id: "base", pk: "p", v: 1 });
  expectOk(r, 201, "create");
  assert.ok(r.headers.etag, "no etag header");
  const g = await request(srv, { path: `${c.docs}/base`, headers: pkHeader(["p"]) });
  expectOk(g, 200, "read");
  assert.equal(g.json.v, 1);
  const miss = await request(srv, { path: `${c.docs}/nope`, headers: pkHeader(["p"]) });
  expectError(miss, 404, "read of a missing document");
});

test("malformed JSON bodies are 400", async () => {
  for (const body of ['{"id": "x", "pk": "p"', "{id: 'x'}", "not json", '{"id":"x","pk":"p"} trailing', "\u0000\u0001", '{"id":"x","pk":"p","a":[1,2,}']) {
    expectError(await createDoc(body), 400, `document body ${JSON.stringify(body)}`);
  }
  expectError(await request(srv, { method: "POST", path: "/dbs", body: "{" }), 400, "database body '{'");
  expectError(
    await request(srv, { method: "POST", path: `/dbs/${c.db}/colls`, body: '{"id": "c2", "partitionKey": ' }),
    400,
    "container body truncated"
  );
  expectError(
    await request(srv, { method: "PUT", path: `${c.docs}/base`, body: "{]", headers: pkHeader(["p"]) }),
    400,
    "replace body '{]'"
  );
  expectError(
    await request(srv, {
      method: "POST",
      path: c.docs,
      body: '{"query": "SELECT * FROM c", "parameters": [',
      headers: { "content-type": "application/query+json", "x-ms-documentdb-isquery": "True", ...pkHeader(["p"]) },
    }),
    400,
    "query body truncated"
  );
});

test("bodies that are JSON but not a document are 400", async () => {
  for (const body of ["[]", "[{\"id\":\"a\"}]", "42", "\"str\"", "null", "true"]) {
    expectError(await createDoc(body), 400, `document body ${body}`);
  }
  expectError(await createDoc({ pk: "p", noid: true }), 400, "document without id");
  expectError(await createDoc({ id: 5, pk: "p" }), 400, "numeric id");
  expectError(await createDoc({ id: "", pk: "p" }), 400, "empty id");
  expectError(await createDoc({ id: null, pk: "p" }), 400, "null id");
  expectError(await request(srv, { method: "POST", path: "/dbs", body: {} }), 400, "database without id");
  // Invalid UTF-8 is not valid JSON text.
  expectError(await createDoc(Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, "invalid UTF-8");
});

test("invalid ids are 400: '/', '\\\\', '?', '#', 256 characters; 255 is fine", async () => {
  for (const id of ["a/b", "a\\b", "a?b", "a#b", "/", "x".repeat(256), "ü".repeat(256)]) {
    expectError(await createDoc({ id, pk: "p" }), 400, `id ${JSON.stringify(id.slice(0, 20))} (${id.length} chars)`);
    expectError(
      await request(srv, { method: "POST", path: c.docs, body: { id, pk: "p" }, headers: { ...pkHeader(["p"]), "x-ms-documentdb-is-upsert": "true" } }),
      400,
      `upsert id ${JSON.stringify(id.slice(0, 20))}`
    );
  }
  for (const id of ["a/b", "a?b", "x".repeat(256)]) {
    expectError(await request(srv, { method: "POST", path: "/dbs", body: { id } }), 400, `database id ${JSON.stringify(id.slice(0, 20))}`);
    expectError(
      await request(srv, { method: "POST", path: `/dbs/${c.db}/colls`, body: { id, partitionKey: { paths: ["/pk"] } } }),
      400,
      `container id ${JSON.stringify(id.slice(0, 20))}`
    );
  }
  const long = "z".repeat(255);
  expectOk(await createDoc({ id: long, pk: "p" }), 201, "255-character id");
  expectOk(await request(srv, { path: `${c.docs}/${long}`, headers: pkHeader(["p"]) }), 200, "read 255-character id");
  // The limit counts characters, not UTF-8 bytes.
  const wide = "ü".repeat(255);
  expectOk(await createDoc({ id: wide, pk: "p" }), 201, "255-character id of 2-byte characters");
  expectOk(
    await request(srv, { path: `${c.docs}/${encodeURIComponent(wide)}`, headers: pkHeader(["p"]) }),
    200,
    "read 255-character id of 2-byte characters"
  );
  // A replace cannot smuggle in a bad id either.
  expectError(
    await request(srv, { method: "PUT", path: `${c.docs}/base`, body: { id: "ba/se", pk: "p" }, headers: pkHeader(["p"]) }),
    400,
    "replace to an id with '/'"
  );
});

test("bad partition key headers are 400", async () => {
  const bad = [
    ["not JSON", "abc"],
    ["truncated JSON", '["p"'],
    ["a bare string, not an array", '"p"'],
    ["a bare number", "5"],
    ["an object other than {}", '[{"a":1}]'],
    ["a nested array", '[["p"]]'],
    ["two values for a one-path key", '["p","q"]'],
  ];
  const failures = [];
  const check = async (what, fn, status) => {
    try {
      expectError(await fn(), status, what);
    } catch (e) {
      failures.push(e.message.split("\n")[0].slice(0, 240));
    }
  };
  for (const [what, h] of bad) {
    await check(`create, partition key header ${what}`, () => createDoc({ id: uid("pk"), pk: "p" }, undefined, { "x-ms-documentdb-partitionkey": h }), 400);
    await check(`read, partition key header ${what}`, () => request(srv, { path: `${c.docs}/base`, headers: { "x-ms-documentdb-partitionkey": h } }), 400);
  }
  // A value that does not match the document's is 400 with substatus 1001.
  const mm = await createDoc({ id: uid("mm"), pk: "p" }, ["q"]);
  await check("partition key header differs from the document", async () => mm, 400);
  if (mm.headers["x-ms-substatus"] !== "1001") failures.push(`partition key mismatch: x-ms-substatus ${mm.headers["x-ms-substatus"]}, want 1001`);
  await check('partition key header [5] for a document with "5"', () => createDoc({ id: uid("mm"), pk: "5" }, [5]), 400);
  // A point read needs the partition key.
  await check("read without a partition key header", () => request(srv, { path: `${c.docs}/base` }), 400);
  assert.deepEqual(failures, [], `bad partition key headers accepted or mis-answered:\n${failures.join("\n")}`);
});

test("bad effective partition key ranges are 400 on feeds and queries; the full range is no filter", async () => {
  expectOk(await createDoc({ id: uid("epk"), pk: "p" }), 201, "a document to read");
  const bad = ["zz", "3a5381e1", "3A53 81", "F".repeat(99), "FFG"];
  const feeds = [
    ["document feed", (h) => request(srv, { path: c.docs, headers: h })],
    ["change feed", (h) => request(srv, { path: c.docs, headers: { "a-im": "Incremental feed", ...h } })],
    [
      "query",
      (h) =>
        request(srv, {
          method: "POST",
          path: c.docs,
          body: JSON.stringify({ query: "SELECT * FROM c" }),
          headers: {
            "content-type": "application/query+json",
            "x-ms-documentdb-isquery": "true",
            "x-ms-documentdb-query-enablecrosspartition": "true",
            ...h,
          },
        }),
    ],
  ];
  for (const [what, send] of feeds) {
    for (const v of bad) {
      expectError(await send({ "x-ms-start-epk": v, "x-ms-end-epk": "FF" }), 400, `${what}, x-ms-start-epk ${JSON.stringify(v)}`);
      expectError(await send({ "x-ms-start-epk": "", "x-ms-end-epk": v }), 400, `${what}, x-ms-end-epk ${JSON.stringify(v)}`);
    }
    const all = await send({});
    expectOk(all, 200, `${what} without a range`);
    const full = await send({ "x-ms-start-epk": "", "x-ms-end-epk": "FF" });
    expectOk(full, 200, `${what} over the full range`);
    assert.equal(full.json._count, all.json._count, `${what}: the full range filtered documents`);
    assert.ok(all.json._count > 0, `${what}: no documents to filter`);
    const none = await send({ "x-ms-start-epk": "3F", "x-ms-end-epk": "3F00" });
    if (none.status !== 304) {
      expectOk(none, 200, `${what} over an empty range`);
      assert.equal(none.json._count, 0, `${what}: documents outside the range`);
    }
  }
});

test("the partition key header is compared as parsed JSON, not as bytes", async () => {
  expectOk(await createDoc({ id: "esc", pk: "ö" }, undefined, { "x-ms-documentdb-partitionkey": '["\\u00f6"]' }), 201, "escaped non-ASCII key");
  // (Header bytes are Latin-1 on the wire, so the same key is sent escaped
  // differently: upper-case hex and spaces.)
  expectOk(
    await request(srv, { path: `${c.docs}/esc`, headers: { "x-ms-documentdb-partitionkey": '[ "\\u00F6" ]' } }),
    200,
    "the same key with upper-case escape and spaces"
  );
  expectOk(await createDoc({ id: "num", pk: 5 }, undefined, { "x-ms-documentdb-partitionkey": "[5.0]" }), 201, "number key written 5.0");
  expectOk(await request(srv, { path: `${c.docs}/num`, headers: { "x-ms-documentdb-partitionkey": "[5]" } }), 200, "number key read as 5");
});

test("requests for resources that do not exist are 404 with an error body", async () => {
  expectError(await request(srv, { path: `/dbs/${uid("nodb")}` }), 404, "missing database");
  expectError(await request(srv, { path: `/dbs/${c.db}/colls/${uid("nocoll")}` }), 404, "missing container");
  expectError(
    await request(srv, { path: `/dbs/${c.db}/colls/${uid("nocoll")}/docs/x`, headers: pkHeader(["p"]) }),
    404,
    "document in a missing container"
  );
  expectError(
    await request(srv, { method: "POST", path: `/dbs/${uid("nodb")}/colls/x/docs`, body: { id: "a", pk: "p" }, headers: pkHeader(["p"]) }),
    404,
    "create in a missing database"
  );
});

test("a 3 MB document is 413", async () => {
  const body = { id: uid("big"), pk: "p", blob: "x".repeat(3 * 1024 * 1024) };
  expectError(await createDoc(body), 413, "3 MB document");
  expectError(await request(srv, { path: `${c.docs}/${body.id}`, headers: pkHeader(["p"]) }), 404, "the refused document exists");
});

/**
 * Over a raw TLS socket: sends request headers (Content-Length `claimed`, or
 * chunked), then body bytes until the server answers, the connection fails,
 * or `limit` bytes; with `pauseAfter`, stops writing after that many body
 * bytes and only waits. Resolves { status, json, text, sent }.
 */
async function oversizedUpload({ claimed, chunked = false, limit = 64 * 1024 * 1024, pauseAfter = Infinity, waitMs = 15000 }) {
  const sock = await tlsConnect(srv);
  const head = rawRequestHead({ claimed, chunked });
  let buf = Buffer.alloc(0);
  let closed = false;
  sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
  sock.on("error", () => {});
  sock.on("close", () => (closed = true));
  const answered = () => closed || responseComplete(buf);
  let sent = 0;
  sock.write(head);
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const deadline = Date.now() + waitMs;
  while (!answered() && Date.now() < deadline) {
    if (sent < Math.min(limit, pauseAfter)) {
      const data = chunked ? Buffer.concat([Buffer.from(piece.length.toString(16) + "\r\n"), piece, Buffer.from("\r\n")]) : piece;
      sent += piece.length;
      if (!sock.write(data)) await new Promise((r) => { sock.once("drain", r); sock.once("close", r); setTimeout(r, 500); });
    } else {
      await sleep(20);
    }
  }
  await sleep(50);
  sock.destroy();
  const s = buf.toString("utf8");
  const i = s.indexOf("\r\n\r\n");
  const text = i >= 0 ? s.slice(i + 4) : "";
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: statusOf(buf), text: text || `(no response; ${buf.length} bytes back, closed=${closed})`, json, sent };
}

function rawRequestHead({ claimed, chunked }) {
  const b = rawRequestBytes(srv, { method: "POST", path: c.docs, extraHeaders: pkHeader(["p"]) });
  let head = b.toString("latin1").replace(/\r\n\r\n$/, "");
  head += "\r\ncontent-type: application/json\r\n";
  head += chunked ? "transfer-encoding: chunked\r\n" : `content-length: ${claimed}\r\n`;
  return Buffer.from(head + "\r\n", "latin1");
}

test("a body claiming 50 MB is refused with 413 before it is sent; the server keeps serving", async () => {
  // Only 64 KB of the claimed 50 MB are sent: the server must answer from
  // the Content-Length alone, not wait for (or buffer) the rest.
  const r = await oversizedUpload({ claimed: 50 * 1024 * 1024, pauseAfter: 64 * 1024, waitMs: 10000 });
  expectError(r, 413, "50 MB Content-Length, 64 KB sent");
  expectOk(await request(srv, { path: "/" }), 200, "GET / after the oversized upload");
});

test("a body claiming 50 MB and streamed is refused with 413; the server keeps serving", async () => {
  const r = await oversizedUpload({ claimed: 50 * 1024 * 1024, limit: 50 * 1024 * 1024 });
  expectError(r, 413, "50 MB Content-Length, streamed");
  expectOk(await request(srv, { path: "/" }), 200, "GET / after the oversized upload");
});

test("a body claiming 50 MB, 4 MB streamed, then paused: 413", async () => {
  const r = await oversizedUpload({ claimed: 50 * 1024 * 1024, pauseAfter: 4 * 1024 * 1024, waitMs: 10000 });
  expectError(r, 413, "50 MB Content-Length, 4 MB sent then paused");
  expectOk(await request(srv, { path: "/" }), 200, "GET / after the oversized upload");
});

test("a chunked body streamed past the limit is refused; the server keeps serving", async () => {
  // Known limit (docs/server.md): libmicrohttpd 0.9.75 cannot queue a
  // response in the middle of an upload, so a chunked body (no
  // Content-Length; the SDKs never send one) that outgrows the cap gets its
  // connection closed instead of a 413. It must not be accepted, and it
  // must not be answered with anything but 413.
  const r = await oversizedUpload({ chunked: true, limit: 50 * 1024 * 1024 });
  if (r.status) expectError(r, 413, "chunked 50 MB body");
  expectOk(await request(srv, { path: "/" }), 200, "GET / after the chunked upload");
});

test("odd paths and methods get an error response, never a crash", async () => {
  const cases = [
    { method: "GET", path: "/nothing/here" },
    { method: "GET", path: "/dbs/%ZZ" },
    { method: "GET", path: "/dbs/a%00b" },
    { method: "DELETE", path: "/" },
    { method: "PUT", path: "/dbs", body: { id: "x" } },
    { method: "GET", path: "/dbs/x/colls/y/docs/z/attachments/q/extra/deep/path/that/goes/on" },
    { method: "GET", path: "/" + "a/".repeat(200) },
  ];
  for (const k of cases) {
    const r = await request(srv, k);
    assert.ok(r.status >= 400 && r.status < 500, `${k.method} ${k.path.slice(0, 40)}: expected a 4xx, got ${r.status}`);
    expectError(r, r.status, `${k.method} ${k.path.slice(0, 40)}`);
  }
  assert.ok(srv.alive());
});

test("many bad requests at once: each fails alone, good ones still succeed", async () => {
  const jobs = [];
  for (let i = 0; i < 40; i++) {
    if (i % 4 === 0) jobs.push(createDoc({ id: `ok-${i}`, pk: "p" }).then((r) => expectOk(r, 201, `good create ${i}`)));
    else if (i % 4 === 1) jobs.push(createDoc("{bad").then((r) => expectError(r, 400, "bad json")));
    else if (i % 4 === 2) jobs.push(request(srv, { path: "/dbs", key: "AAAA" }).then((r) => expectError(r, 401, "bad key")));
    else jobs.push(createDoc({ id: `a/${i}`, pk: "p" }).then((r) => expectError(r, 400, "bad id")));
  }
  await Promise.all(jobs);
  const r = await request(srv, {
    method: "POST",
    path: c.docs,
    body: { query: "SELECT * FROM c WHERE c.id = @id", parameters: [{ name: "@id", value: "ok-8" }] },
    headers: { "content-type": "application/query+json", "x-ms-documentdb-isquery": "True", ...pkHeader(["p"]) },
  });
  expectOk(r, 200, "query after the storm");
  assert.equal(r.json.Documents.length, 1);
  assert.ok(srv.alive());
});

test("change feed requests with bad positions, dates and page sizes fail alone", async () => {
  const feed = (headers) => request(srv, { path: c.docs, headers: { "a-im": "Incremental feed", ...headers } });
  expectOk(await createDoc({ id: "cf-raw", pk: "p" }), 201, "create");
  const all = await feed({});
  expectOk(all, 200, "change feed from the beginning");
  assert.ok(all.json.Documents.some((d) => d.id === "cf-raw" && typeof d._lsn === "number"));
  assert.match(all.headers.etag, /^"\d+"$/);
  const bad = ['"abc"', '"-1"', '"1e9"', '"99999999999999999999999"', '""', "x".repeat(10000), '"1'];
  for (const v of bad) expectError(await feed({ "if-none-match": v }), 400, `If-None-Match ${JSON.stringify(v.slice(0, 40))}`);
  for (const v of ["yesterday", "Thu, 32 Jan 2026 00:00:00 GMT", "Thu, 01 Jan 2026 00:00:00"]) {
    expectError(await feed({ "if-modified-since": v }), 400, `If-Modified-Since ${JSON.stringify(v)}`);
  }
  const end = await feed({ "if-none-match": all.headers.etag });
  assert.equal(end.status, 304, "nothing after the last position");
  assert.equal(end.headers.etag, all.headers.etag);
  const now = await feed({ "if-none-match": "*" });
  assert.equal(now.status, 304);
  assert.equal(now.headers.etag, all.headers.etag);
  const far = await feed({ "if-none-match": '"999999999"' });
  assert.equal(far.status, 304, "a position past the end is simply nothing new");
  for (const n of ["0", "-5", "abc", "99999999999"]) expectOk(await feed({ "x-ms-max-item-count": n }), 200, `page size ${n}`);
  const one = await feed({ "x-ms-max-item-count": "1" });
  expectOk(one, 200, "page of 1");
  assert.equal(one.json.Documents.length, 1);
  expectOk(await request(srv, { path: "/" }), 200, "the server still serves");
});

test("a Transfer-Encoding other than 'chunked' is 501, with Content-Length too 400, at once; 'chunked' works", async () => {
  const send = async (te, withLength) => {
    const id = uid("te");
    const body = Buffer.from(JSON.stringify({ id, pk: "p" }));
    const b = rawRequestBytes(srv, { method: "POST", path: c.docs, extraHeaders: pkHeader(["p"]) });
    let head = b.toString("latin1").replace(/\r\n\r\n$/, "") + "\r\ncontent-type: application/json\r\n";
    head += `transfer-encoding: ${te}\r\n`;
    if (withLength) head += `content-length: ${body.length}\r\n`;
    const sock = await tlsConnect(srv);
    let buf = Buffer.alloc(0);
    sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
    sock.on("error", () => {});
    const t0 = Date.now();
    sock.write(Buffer.concat([Buffer.from(head + "\r\n", "latin1"), Buffer.from(body.length.toString(16) + "\r\n"), body, Buffer.from("\r\n0\r\n\r\n")]));
    while (!responseComplete(buf) && Date.now() - t0 < 5000) await sleep(20);
    sock.destroy();
    const s = buf.toString("utf8");
    return { status: statusOf(buf), text: s.slice(s.indexOf("\r\n\r\n") + 4), json: (() => { try { return JSON.parse(s.slice(s.indexOf("\r\n\r\n") + 4)); } catch { return undefined; } })(), id };
  };
  const ok = await send("chunked", false);
  assert.equal(ok.status, 201, ok.text);
  for (const te of ["gzip, chunked", "chunked, chunked", "identity", "gzip"]) expectError(await send(te, false), 501, `transfer-encoding ${te}`);
  expectError(await send("chunked", true), 400, "chunked with a Content-Length");
  expectOk(await request(srv, { path: "/" }), 200, "GET / afterwards");
});

test("an id with U+0000 is 400; %00 in a path names no resource (404, not a truncated id); an incr to infinity is 400", async () => {
  expectError(await createDoc({ id: "a\u0000b", pk: "p" }), 400, "id with U+0000");
  const id = uid("nul");
  expectOk(await createDoc({ id, pk: "p", v: 1e308 }), 201, "create");
  // signed over the id the server would have read before: it must not read it
  const r = await request(srv, { path: `${c.docs}/${id}%00junk`, headers: pkHeader(["p"]), resourceType: "docs", resourceLink: `${c.docs.slice(1)}/${id}` });
  expectError(r, 404, "GET .../id%00junk");
  const p = await request(srv, { method: "PATCH", path: `${c.docs}/${id}`, headers: pkHeader(["p"]), body: { operations: [{ op: "incr", path: "/v", value: 1e308 }] } });
  expectError(p, 400, "incr 1e308 + 1e308");
  const after = await request(srv, { path: `${c.docs}/${id}`, headers: pkHeader(["p"]) });
  expectOk(after, 200, "read after the refused patch");
  assert.equal(after.json.v, 1e308);
});
