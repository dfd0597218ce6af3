// Shared setup for the @azure/cosmos suites: one atrestd per test file, one
// CosmosClient that trusts the server's own certificate (verification on).

import assert from "node:assert/strict";
import { after, before } from "node:test";
import crypto from "node:crypto";
import https from "node:https";
import "../../lib/webcrypto.mjs";
import { CosmosClient } from "@azure/cosmos";
import { startServer, stopAndCheck } from "../../lib/harness.mjs";

export { assert };

export async function startWithClient(opts = {}) {
  const srv = await startServer(opts);
  const client = new CosmosClient({
    endpoint: srv.endpoint,
    key: opts.clientKey || srv.masterKey,
    agent: new https.Agent({ ca: srv.cert, keepAlive: true }),
  });
  return { srv, client };
}

export async function shutdown({ srv, client }) {
  if (client) client.dispose();
  if (srv) await stopAndCheck(srv, assert);
}

/** Polls the container until its index rebuild reports 100 (or tries × 50 ms pass); returns the last progress. */
export async function rebuilt(container, tries = 200) {
  let progress = -1;
  for (let i = 0; i < tries && progress !== 100; i++) {
    const res = await container.read();
    progress = Number(res.headers["x-ms-documentdb-collection-index-transformation-progress"]);
    if (progress !== 100) await new Promise((r) => setTimeout(r, 50));
  }
  return progress;
}

export const uid = (prefix = "") => prefix + crypto.randomBytes(6).toString("hex");

/**
 * Runs fn, which must fail with a Cosmos error of the given HTTP status.
 * Returns the error.
 */
export async function expectCode(fn, status, what) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: expected HTTP ${status}, the call succeeded`);
  assert.equal(err.code, status, `${what}: expected HTTP ${status}, got ${err.code}: ${err.message}`);
  return err;
}

/** Every page of a query iterator, checking each page holds at most `max` items. */
export async function allPages(iter, max) {
  const pages = [];
  let guard = 0;
  while (iter.hasMoreResults()) {
    const r = await iter.fetchNext();
    if (max !== undefined) {
      assert.ok(r.resources.length <= max, `page of ${r.resources.length} > maxItemCount ${max}`);
    }
    pages.push(r.resources);
    assert.ok(++guard < 1000, "paging did not end");
  }
  return pages;
}

/**
 * One atrestd and one database for a test file: registers before/after and
 * returns { ctx, database }, filled in once the server runs (ctx may be
 * replaced by a test that restarts the server).
 */
export function serverWithDatabase(opts = {}) {
  const env = { ctx: null, database: null };
  before(async () => {
    env.ctx = await startWithClient(opts);
    ({ database: env.database } = await env.ctx.client.databases.createIfNotExists({ id: uid("db-") }));
  });
  after(async () => {
    await shutdown(env.ctx);
  });
  return env;
}
