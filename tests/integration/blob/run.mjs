#!/usr/bin/env node
// Runs the blob store integration suite against Azurite:
//   node tests/integration/blob/run.mjs        npm ci if needed, then the tests
//   node tests/integration/blob/run.mjs npm    only the npm ci (a ctest fixture)
// Azurite (pinned in package.json / package-lock.json) is installed with
// `npm ci` into tests/integration/blob/node_modules when missing or older
// than the lock file. ATREST_CLI names the atrest binary (default build/atrest),
// ATREST_BIN the atrestd binary (continuous.test.mjs).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function ensureAzurite() {
  const lock = path.join(here, "package-lock.json");
  const stamp = path.join(here, "node_modules", ".package-lock.json");
  const bin = path.join(here, "node_modules", "azurite", "package.json");
  const fresh =
    fs.existsSync(bin) && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= fs.statSync(lock).mtimeMs;
  if (fresh) return;
  console.log("atrest-it: npm ci in", here);
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: here, stdio: "inherit" });
  if (r.status !== 0) {
    console.error("atrest-it: npm ci failed");
    process.exit(r.status || 1);
  }
}

ensureAzurite();
if (process.argv[2] === "npm") process.exit(0);
const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => path.join(here, f));
const r = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
if (r.error) {
  console.error(r.error);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);
