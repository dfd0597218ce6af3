#!/usr/bin/env node
// Runs one integration suite with node's built-in test runner:
//   node tests/integration/run.mjs js|query|raw|noplaintext|npm
// js, query and noplaintext need @azure/cosmos: installed with `npm ci` into
// tests/integration/js/node_modules when missing or older than the lock file
// (`npm` alone does only that). On Node 18 (Debian's nodejs) the SDK needs
// the global Web Crypto object, so node runs with --experimental-global-webcrypto
// when globalThis.crypto is missing. ATREST_BIN names the server binary.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const jsDir = path.join(here, "js");
const suites = {
  js: path.join(jsDir, "sdk"),
  noplaintext: path.join(jsDir, "noplaintext"),
  query: path.join(jsDir, "query"),
  raw: path.join(here, "raw"),
  continuous: path.join(jsDir, "continuous"),
  backup: path.join(jsDir, "backup"),
  datakeys: path.join(jsDir, "datakeys"),
};

function ensureSdk() {
  const lock = path.join(jsDir, "package-lock.json");
  const stamp = path.join(jsDir, "node_modules", ".package-lock.json");
  const sdk = path.join(jsDir, "node_modules", "@azure", "cosmos", "package.json");
  const fresh =
    fs.existsSync(sdk) && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= fs.statSync(lock).mtimeMs;
  if (fresh) return;
  console.log("atrest-it: npm ci in", jsDir);
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: jsDir,
    stdio: "inherit",
  });
  if (r.status !== 0) {
    console.error("atrest-it: npm ci failed");
    process.exit(r.status || 1);
  }
}

const suite = process.argv[2];
if (suite === "npm") {
  ensureSdk();
  process.exit(0);
}
if (!suites[suite]) {
  console.error("usage: node run.mjs js|query|raw|noplaintext|npm");
  process.exit(2);
}
if (suite !== "raw") ensureSdk();

const files = fs
  .readdirSync(suites[suite])
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => path.join(suites[suite], f));
if (files.length === 0) {
  console.error(`atrest-it: no test files in ${suites[suite]}`);
  process.exit(1);
}

const flags = [];
const env = { ...process.env };
if (typeof globalThis.crypto === "undefined" || !globalThis.crypto.randomUUID) {
  // The test runner starts each file's process with this process's flags.
  flags.push("--experimental-global-webcrypto");
}
const r = spawnSync(process.execPath, [...flags, "--test", ...files], { stdio: "inherit", env });
if (r.error) {
  console.error(r.error);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);
