import assert from "node:assert/strict";
import crypto from "node:crypto";
import { request } from "../lib/rawhttp.mjs";

export { assert };

export const uid = (prefix = "") => prefix + crypto.randomBytes(6).toString("hex");
export const randomKey = () => crypto.randomBytes(64).toString("base64");

/** The response is a Cosmos error: the status, and a JSON body with string code and message. */
export function expectError(res, status, what) {
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(
    statuses.includes(res.status),
    `${what}: expected HTTP ${statuses.join(" or ")}, got ${res.status}: ${res.text.slice(0, 300)}`
  );
  assert.ok(res.json && typeof res.json === "object", `${what}: error body is not JSON: ${JSON.stringify(res.text.slice(0, 200))}`);
  assert.equal(typeof res.json.code, "string", `${what}: error body lacks a string "code": ${res.text.slice(0, 200)}`);
  assert.equal(typeof res.json.message, "string", `${what}: error body lacks a string "message": ${res.text.slice(0, 200)}`);
  assert.ok(res.json.message.length > 0, `${what}: empty error message`);
}

export function expectOk(res, status, what) {
  assert.equal(res.status, status, `${what}: expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
}

/** Creates a database and a container partitioned on /pk; returns their paths. */
export async function makeContainer(srv, paths = ["/pk"]) {
  const db = uid("db");
  expectOk(await request(srv, { method: "POST", path: "/dbs", body: { id: db } }), 201, "create database");
  const coll = uid("c");
  expectOk(
    await request(srv, {
      method: "POST",
      path: `/dbs/${db}/colls`,
      body: { id: coll, partitionKey: { paths, kind: paths.length > 1 ? "MultiHash" : "Hash", ...(paths.length > 1 ? { version: 2 } : {}) } },
    }),
    201,
    "create container"
  );
  return { db, coll, docs: `/dbs/${db}/colls/${coll}/docs` };
}

export function pkHeader(v) {
  return { "x-ms-documentdb-partitionkey": JSON.stringify(v) };
}
