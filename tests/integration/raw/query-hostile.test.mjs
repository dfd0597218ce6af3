// Hostile query requests over raw HTTPS: each must be answered quickly with
// a status Cosmos DB would give and, for an error, a JSON body {code, message};
// the server keeps serving (a point read afterwards works) and survives.
//
// What Cosmos does, and so what is accepted here:
//   - syntax errors (unterminated string, NUL bytes, unbalanced input): 400;
//   - query text over the documented limit ("Maximum length of SQL query:
//     512 KB", learn.microsoft.com/azure/cosmos-db/concepts-limits#sql-query-limits): 400
//     (413 tolerated: the request body is also large);
//   - a request body that is not UTF-8 is not JSON text: 400;
//   - pathological but valid queries within the limits (100,000 nested
//     parentheses or object literals, a 50,000-element IN list, LIKE with
//     many %, a backtracking regular expression, huge number literals): the
//     service either answers them (200, and then the answer must be right)
//     or refuses them as too complex (400). Both are accepted; crashing,
//     hanging or a 5xx are not. Older limits pages listed "Maximum arguments
//     per IN expression: 6000", so 400 is expected there, 200 tolerated.
import { after, before, test } from "node:test";
import { startServer, stopAndCheck } from "../lib/harness.mjs";
import { request } from "../lib/rawhttp.mjs";
import { assert, expectError, expectOk, makeContainer, pkHeader } from "./common.mjs";

let srv;
let c;
const LONG_A = "a".repeat(50_000);
before(async () => {
  srv = await startServer();
  c = await makeContainer(srv);
  const docs = [
    { id: "base", pk: "p", v: 1 },
    { id: "long-a", pk: "p", s: LONG_A },
    { id: "long-ab", pk: "p", s: LONG_A + "b" },
  ];
  for (const d of docs) {
    expectOk(await request(srv, { method: "POST", path: c.docs, body: d, headers: pkHeader(["p"]) }), 201, `create ${d.id}`);
  }
});
after(async () => {
  assert.ok(srv.alive(), "atrestd died during the hostile query tests");
  await stopAndCheck(srv, assert);
});

const LIMIT_MS = 8000; // "within a few seconds", with room for a loaded 2-core machine

/** Sends one query (body: an object, or raw bytes) as the SDK would, cross-partition. */
function query(body, extraHeaders = {}) {
  return request(srv, {
    method: "POST",
    path: c.docs,
    body: Buffer.isBuffer(body) || typeof body === "string" ? body : JSON.stringify(body),
    headers: {
      "content-type": "application/query+json",
      "x-ms-documentdb-isquery": "True",
      "x-ms-documentdb-query-enablecrosspartition": "True",
      ...extraHeaders,
    },
    timeoutMs: 60000,
  });
}

/** The server still serves: a point read of a known item. */
async function stillServing(what) {
  assert.ok(srv.alive(), `atrestd died after: ${what}`);
  const r = await request(srv, { path: `${c.docs}/base`, headers: pkHeader(["p"]) });
  expectOk(r, 200, `point read after: ${what}`);
  assert.equal(r.json.v, 1);
}

/**
 * Runs a hostile request. statuses: the accepted statuses. on200(docs):
 * checks the result when the server answered it. Returns the response.
 */
async function hostile(what, send, { statuses = [400], on200 } = {}) {
  const t0 = Date.now();
  const r = await send();
  const ms = Date.now() - t0;
  assert.ok(ms < LIMIT_MS, `${what}: answered after ${ms} ms (limit ${LIMIT_MS})`);
  if (r.status === 200) {
    assert.ok(statuses.includes(200), `${what}: expected HTTP ${statuses.join(" or ")}, got 200: ${r.text.slice(0, 300)}`);
    assert.ok(r.json && Array.isArray(r.json.Documents), `${what}: a 200 without a Documents array: ${r.text.slice(0, 300)}`);
    if (on200) on200(r.json.Documents);
  } else {
    const errs = statuses.filter((s) => s !== 200);
    assert.ok(errs.length > 0, `${what}: expected HTTP 200, got ${r.status}: ${r.text.slice(0, 300)}`);
    expectError(r, errs, what);
  }
  await stillServing(what);
  return r;
}

test("baseline: a simple query answers 200 with the item", async () => {
  const r = await query({ query: "SELECT * FROM c WHERE c.id = @id", parameters: [{ name: "@id", value: "base" }] });
  expectOk(r, 200, "simple query");
  assert.deepEqual(r.json.Documents.map((d) => d.id), ["base"]);
});

test("100,000 nested parentheses: refused (400) or answered correctly, quickly", async () => {
  const n = 100_000;
  await hostile("SELECT VALUE ((((…1…))))", () => query({ query: "SELECT VALUE " + "(".repeat(n) + "1" + ")".repeat(n) }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, [1]),
  });
  await hostile("WHERE ((((…c.v = 1…))))", () => query({ query: "SELECT * FROM c WHERE " + "(".repeat(n) + "c.v = 1" + ")".repeat(n) }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs.map((d) => d.id), ["base"]),
  });
  // Unbalanced: always a syntax error.
  await hostile("100,000 '(' never closed", () => query({ query: "SELECT VALUE " + "(".repeat(n) + "1" }));
});

test("deeply nested object, array and NOT chains: refused (400) or answered, quickly", async () => {
  const n = 100_000;
  await hostile("{a:{a:{…}}} nested 100,000 deep", () => query({ query: "SELECT VALUE " + "{a:".repeat(n) + "1" + "}".repeat(n) }), { statuses: [400, 200] });
  await hostile("[[[…]]] nested 100,000 deep", () => query({ query: "SELECT VALUE " + "[".repeat(n) + "1" + "]".repeat(n) }), { statuses: [400, 200] });
  await hostile("NOT NOT … 50,000 times", () => query({ query: "SELECT * FROM c WHERE " + "NOT ".repeat(50_000) + "false" }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, [], "an even number of NOTs over false is false"),
  });
  await hostile("-(-(…)) 100,000 deep", () => query({ query: "SELECT VALUE " + "-(".repeat(n) + "1" + ")".repeat(n) }), { statuses: [400, 200] });
  await hostile("a.b.c… 100,000 member accesses", () => query({ query: "SELECT VALUE c" + ".a".repeat(n) + " FROM c" }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
});

test("a 50,000-element IN list: 400 (over the documented 6000) or the right answer", async () => {
  const list = Array.from({ length: 50_000 }, (_, i) => i + 2); // 1 is not in it
  await hostile("IN with 50,000 numbers", () => query({ query: `SELECT * FROM c WHERE c.v IN (${list.join(",")})` }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
  const withOne = [...list.slice(0, 49_999), 1];
  await hostile("IN with 50,000 numbers, the last matching", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.v IN (${withOne.join(",")})` }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, ["base"]),
  });
  const strs = Array.from({ length: 50_000 }, (_, i) => `"s${i}"`);
  await hostile("IN with 50,000 strings", () => query({ query: `SELECT * FROM c WHERE c.id IN (${strs.join(",")})` }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
});

test("unterminated strings and comments-like input are syntax errors (400)", async () => {
  for (const q of [
    "SELECT * FROM c WHERE c.id = 'abc",
    'SELECT * FROM c WHERE c.id = "abc',
    'SELECT VALUE "\\',
    'SELECT VALUE "\\u12"',
    "SELECT * FROM c WHERE c.id = '" + "x".repeat(100_000),
    "SELECT * FROM c WHERE c[\"a",
    "SELECT VALUE {",
    "SELECT VALUE [1, 2",
  ]) {
    await hostile(`unterminated: ${JSON.stringify(q.slice(0, 40))}`, () => query({ query: q }));
  }
});

test("non-UTF-8 bytes in the query text: 400", async () => {
  const prefix = Buffer.from('{"query": "SELECT * FROM c WHERE c.id = \'');
  const suffix = Buffer.from("'\"}");
  for (const bad of [[0xff], [0xfe, 0xff], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
    const body = Buffer.concat([prefix, Buffer.from(bad), suffix]);
    await hostile(`bytes ${Buffer.from(bad).toString("hex")} in the query`, () => query(body));
  }
  // A lone surrogate escaped in the JSON body decodes to no valid character.
  await hostile("lone surrogate \\ud800 in the query", () => query('{"query": "SELECT VALUE \'\\ud800\'"}'), {
    statuses: [400, 200],
  });
});

test("NUL bytes: escaped in the JSON body (400: not valid query text), or raw in the body (400: not JSON)", async () => {
  await hostile("\\u0000 inside the query, outside a string", () => query({ query: "SELECT * FROM c\u0000 WHERE c.v = 1" }));
  await hostile("\\u0000 at the end of the query", () => query({ query: "SELECT * FROM c\u0000" }));
  await hostile("the query is only \\u0000", () => query({ query: "\u0000" }));
  await hostile("\\u0000 inside a string literal", () => query({ query: "SELECT * FROM c WHERE c.id = 'a\u0000b'" }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
  const raw = Buffer.concat([Buffer.from('{"query": "SELECT * FROM c'), Buffer.from([0]), Buffer.from('"}')]);
  await hostile("a raw NUL byte in the JSON body", () => query(raw));
});

test("a 1 MB query is over the 512 KB limit: 400", async () => {
  const pad = " ".repeat(1024 * 1024);
  await hostile("1 MB of spaces in a valid query", () => query({ query: "SELECT * FROM c" + pad + "WHERE c.v = 1" }), { statuses: [400, 413] });
  const big = "x".repeat(1024 * 1024);
  await hostile("a 1 MB string literal", () => query({ query: `SELECT * FROM c WHERE c.id = "${big}"` }), { statuses: [400, 413] });
  const ors = Array.from({ length: 60_000 }, (_, i) => `c.v = ${i}`).join(" OR ");
  await hostile(`${ors.length} bytes of OR terms`, () => query({ query: `SELECT * FROM c WHERE ${ors}` }), { statuses: [400, 413] });
  // A large parameter value is fine where the query text is short.
  await hostile("a 1 MB parameter value", () => query({ query: "SELECT * FROM c WHERE c.id = @p", parameters: [{ name: "@p", value: big }] }), {
    statuses: [200, 400, 413],
    on200: (docs) => assert.deepEqual(docs, []),
  });
});

test("huge and odd number literals: answered (as doubles) or refused, never a crash", async () => {
  const digits = "9".repeat(400);
  for (const [q, check] of [
    [`SELECT VALUE ${digits}`, null],
    ["SELECT VALUE 1e400", null],
    ["SELECT VALUE -1e400", null],
    ["SELECT VALUE 1e-400", (docs) => assert.ok(docs.length === 1 && docs[0] === 0, `1e-400 underflows to 0, got ${JSON.stringify(docs)}`)],
    ["SELECT VALUE 123456789012345678901234567890", (docs) => assert.ok(docs.length === 1 && Math.abs(docs[0] / 1.2345678901234568e29 - 1) < 1e-12, `got ${JSON.stringify(docs)}`)],
    ["SELECT VALUE 0x" + "F".repeat(40), null],
    ["SELECT VALUE 1e99999999999999999999", null],
    ["SELECT VALUE 0." + "0".repeat(10000) + "1", null],
    ["SELECT * FROM c WHERE c.v = " + digits, (docs) => assert.deepEqual(docs, [])],
    ["SELECT TOP 99999999999999999999 * FROM c WHERE c.id = 'base'", null],
    ["SELECT * FROM c WHERE c.id = 'base' OFFSET 0 LIMIT 99999999999999999999", null],
    ["SELECT * FROM c WHERE c.id = 'base' OFFSET 99999999999999999999 LIMIT 1", (docs) => assert.deepEqual(docs, [])],
  ]) {
    const r = await hostile(`number: ${q.slice(0, 60)}`, () => query({ query: q }), { statuses: [400, 200], on200: check || undefined });
    if (r.status === 200 && r.json.Documents.length) {
      // Whatever came back must be JSON numbers (no Infinity/NaN tokens: the body parsed).
      for (const d of r.json.Documents) assert.ok(typeof d === "number" || (d && typeof d === "object"), `${q.slice(0, 40)}: got ${JSON.stringify(d)}`);
    }
  }
  await hostile("a huge number parameter", () => query({ query: "SELECT VALUE @n", parameters: [{ name: "@n", value: 1.7976931348623157e308 }] }), {
    statuses: [200],
    on200: (docs) => assert.deepEqual(docs, [1.7976931348623157e308]),
  });
});

test("LIKE with many % over a long string: answered correctly within seconds (Cosmos accepts it)", async () => {
  const pat = "%a".repeat(40) + "%b";
  await hostile(`LIKE '${pat.slice(0, 20)}…' over 50,000 'a' (no match)`, () => query({ query: `SELECT VALUE c.id FROM c WHERE c.s LIKE "${pat}" AND c.id = "long-a"` }), {
    statuses: [200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
  await hostile("the same over 50,000 'a' + 'b' (a match)", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.s LIKE "${pat}"` }), {
    statuses: [200],
    on200: (docs) => assert.deepEqual(docs, ["long-ab"]),
  });
  const under = "%" + "_".repeat(200) + "%b";
  await hostile("LIKE with 200 '_' between '%'", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.s LIKE "${under}"` }), {
    statuses: [200],
    on200: (docs) => assert.deepEqual(docs, ["long-ab"]),
  });
  const many = "%".repeat(5000) + "c";
  await hostile("LIKE with 5,000 '%' then a missing letter", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.s LIKE "${many}"` }), {
    statuses: [200],
    on200: (docs) => assert.deepEqual(docs, []),
  });
});

test("RegexMatch with a catastrophic pattern '(a+)+$': 200 with no match, or 400, within seconds", async () => {
  // "aaaa…ab": (a+)+$ cannot match (the string ends in b); a naive
  // backtracking engine takes exponential time.
  await hostile("RegexMatch(c.s, '(a+)+$') over 50,000 'a' + 'b'", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.id = "long-ab" AND RegexMatch(c.s, "(a+)+$")` }), {
    statuses: [200, 400],
    on200: (docs) => assert.deepEqual(docs, [], "(a+)+$ does not match a string ending in b"),
  });
  await hostile("RegexMatch constant '(a|aa)+$' over 'a'*40 + 'b'", () => query({ query: `SELECT VALUE RegexMatch("${"a".repeat(40)}b", "(a|aa)+$")` }), {
    statuses: [200, 400],
    on200: (docs) => assert.ok(docs.length === 0 || (docs.length === 1 && docs[0] === false), `want false (or undefined), got ${JSON.stringify(docs)}`),
  });
  await hostile("RegexMatch with a back-reference bomb", () => query({ query: `SELECT VALUE RegexMatch("${"a".repeat(5000)}", "^(a*)*\\\\1b")` }), { statuses: [200, 400] });
  await hostile("RegexMatch with an invalid pattern", () => query({ query: `SELECT VALUE RegexMatch("abc", "(")` }), {
    statuses: [400, 200],
    on200: (docs) => assert.deepEqual(docs, [], "an invalid pattern gives undefined or an error"),
  });
  // The matching case still answers true.
  await hostile("RegexMatch '(a+)+$' over 50,000 'a' (a match)", () => query({ query: `SELECT VALUE c.id FROM c WHERE c.id = "long-a" AND RegexMatch(c.s, "(a+)+$")` }), {
    statuses: [200, 400],
    on200: (docs) => assert.deepEqual(docs, ["long-a"]),
  });
});

test("many hostile queries at once: every one answered, the server keeps serving", async () => {
  const qs = [
    "SELECT VALUE " + "(".repeat(50_000) + "1" + ")".repeat(50_000),
    "SELECT * FROM c WHERE c.s LIKE \"" + "%a".repeat(40) + "%b\"",
    "SELECT * FROM c WHERE c.id = 'oops",
    "SELECT * FROM c WHERE RegexMatch(c.s, \"(a+)+$\")",
  ];
  const t0 = Date.now();
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => query({ query: qs[i % qs.length] })));
  for (const [i, r] of rs.entries()) {
    assert.ok([200, 400].includes(r.status), `query ${i}: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    if (r.status !== 200) expectError(r, 400, `query ${i}`);
  }
  assert.ok(Date.now() - t0 < 4 * LIMIT_MS, `12 concurrent hostile queries took ${Date.now() - t0} ms`);
  await stillServing("12 concurrent hostile queries");
});

test("a slow filter pages: a streaming page ends after about 5 s with a continuation, and the pages add up", async () => {
  // Each RegexMatch below stops at its 1 s budget (undefined), so every
  // document costs about a second and all 7 match NOT IS_DEFINED(...).
  const slow = await makeContainer(srv);
  const ids = [];
  for (let i = 0; i < 7; i++) {
    const id = `slow-${i}`;
    ids.push(id);
    expectOk(await request(srv, { method: "POST", path: slow.docs, body: { id, pk: "p", s: "a".repeat(100_000) }, headers: pkHeader(["p"]) }), 201, `create ${id}`);
  }
  const q = JSON.stringify({ query: 'SELECT VALUE c.id FROM c WHERE NOT IS_DEFINED(RegexMatch(c.s, "(?=a*b)(?=a*c)"))', parameters: [] });
  const send = (token) =>
    request(srv, {
      method: "POST",
      path: slow.docs,
      body: q,
      headers: {
        "content-type": "application/query+json",
        "x-ms-documentdb-isquery": "True",
        "x-ms-documentdb-query-enablecrosspartition": "True",
        ...(token ? { "x-ms-continuation": token } : {}),
      },
      timeoutMs: 60000,
    });
  const t0 = Date.now();
  const first = await send();
  const ms = Date.now() - t0;
  expectOk(first, 200, "first page");
  const got = [...first.json.Documents];
  assert.ok(got.length >= 1 && got.length < ids.length, `first page: ${got.length} of ${ids.length} rows after ${ms} ms`);
  assert.ok(ms >= 4000 && ms < 9000, `first page took ${ms} ms (the page limit is 5 s)`);
  let token = first.headers["x-ms-continuation"];
  assert.ok(token, "a page cut by time has a continuation");
  for (let pages = 1; token; pages++) {
    assert.ok(pages < ids.length, "more pages than documents");
    const r = await send(token);
    expectOk(r, 200, `page ${pages + 1}`);
    got.push(...r.json.Documents);
    token = r.headers["x-ms-continuation"];
  }
  assert.deepEqual([...got].sort(), [...ids].sort(), "every document once, over all pages");
  await stillServing("a slow paged query");
});

test("continuation tokens: garbage, forged and borrowed tokens get 400; a real one resumes", async () => {
  const q = { query: "SELECT VALUE c.id FROM c ORDER BY c.id", parameters: [] };
  const first = await query(q, { "x-ms-max-item-count": "1" });
  expectOk(first, 200, "first page");
  const token = first.headers["x-ms-continuation"];
  assert.ok(token, "a first page of 1 of 3 rows has a continuation");
  const second = await query(q, { "x-ms-max-item-count": "1", "x-ms-continuation": token });
  expectOk(second, 200, "second page");
  assert.deepEqual([...first.json.Documents, ...second.json.Documents], ["base", "long-a"]);
  for (const bad of ["garbage", "{}", '{"o":-1,"t":0,"h":"1"}', '{"s":1e300,"j":0,"r":0,"t":0,"h":"ab"}', "[1,2]", "\u00ff"]) {
    await hostile(`continuation ${bad}`, () => query(q, { "x-ms-continuation": bad }));
  }
  // a token of this query given to another one
  await hostile("borrowed continuation", () =>
    query({ query: "SELECT VALUE c.v FROM c ORDER BY c.id", parameters: [] }, { "x-ms-continuation": token }),
  );
  // ... to the same query on another container, or under a partition key
  const other = await makeContainer(srv);
  expectOk(await request(srv, { method: "POST", path: other.docs, body: { id: "zz", pk: "p" }, headers: pkHeader(["p"]) }), 201, "create in the other container");
  const foreign = await request(srv, {
    method: "POST", path: other.docs, body: JSON.stringify(q), timeoutMs: 60000,
    headers: { "content-type": "application/query+json", "x-ms-documentdb-isquery": "True",
      "x-ms-documentdb-query-enablecrosspartition": "True", "x-ms-max-item-count": "1", "x-ms-continuation": token },
  });
  expectError(foreign, 400, "a token of another container");
  await hostile("a cross-partition token under a partition key", () =>
    query(q, { "x-ms-max-item-count": "1", "x-ms-continuation": token, ...pkHeader(["p"]) }));
  await stillServing("continuation tokens");
});
