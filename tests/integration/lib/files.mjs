// Small helpers shared by the backup suites: running the atrest command line
// and listing the files of a folder.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** Runs bin with args; resolves to { code, out, err }. */
export function runTool(bin, args) {
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: 120000 });
  return { code: r.status, out: r.stdout || "", err: r.stderr || "" };
}

/** Every regular file under dir, recursively. */
export function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}
