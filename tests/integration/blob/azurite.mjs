// Helpers for the blob store suite: Azurite on a free loopback port, a
// fault-injecting HTTP proxy in front of it, and the atrest CLI.
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..", "..");

export const ACCOUNT = "devstoreaccount1";
// Azurite's documented development key (public; not a secret).
export const DEV_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
export const CLI = process.env.ATREST_CLI || path.join(repo, "build", "atrest");

export function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `atrest-blob-${tag}-`));
}

export function writeKey(dir, key = DEV_KEY) {
  const p = path.join(dir, "account.key");
  fs.writeFileSync(p, key + "\n", { mode: 0o600 });
  return p;
}

// Start azurite-blob; port 0 picks a free one. Resolves {proc, port, location}.
export function startAzurite(location, port = 0) {
  const bin = path.join(here, "node_modules", ".bin", "azurite-blob");
  const args = [
    "--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location,
    "--disableTelemetry", "--skipApiVersionCheck",
  ];
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${out}`)), 30000);
    const onData = (d) => {
      out += d;
      const m = out.match(/listens on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), location });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited (${code}): ${out}`));
    });
  });
}

export function stopAzurite(az, signal = "SIGTERM") {
  if (!az || az.proc.exitCode !== null || az.proc.signalCode) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => az.proc.kill("SIGKILL"), 10000);
    az.proc.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    az.proc.kill(signal);
  });
}

// Run the CLI asynchronously (so an in-process proxy keeps serving).
// Resolves {status, signal, stdout, stderr}; opts.stdin: data to write;
// opts.onSpawn(child) for tests that kill it.
export function cli(args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out = [];
    let stderr = "";
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status, signal) => {
      const stdoutBuf = Buffer.concat(out);
      resolve({ status, signal, stdout: stdoutBuf.toString("utf8"), stdoutBuf, stderr });
    });
    child.stdin.on("error", () => {});
    if (opts.onSpawn) opts.onSpawn(child);
    else child.stdin.end();
  });
}

// A file of n random bytes (written in chunks); returns {path, sha256}.
export function randomFile(dir, name, n, canary) {
  const p = path.join(dir, name);
  const fd = fs.openSync(p, "w", 0o600);
  const h = crypto.createHash("sha256");
  let left = n;
  let first = true;
  while (left > 0) {
    const chunk = crypto.randomBytes(Math.min(left, 1 << 20));
    if (first && canary) Buffer.from(canary).copy(chunk, 100);
    first = false;
    fs.writeSync(fd, chunk);
    h.update(chunk);
    left -= chunk.length;
  }
  fs.closeSync(fd);
  return { path: p, sha256: h.digest("hex") };
}

export function sha256File(p) {
  return crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
}

// The kind of a Blob REST request, from method and query.
export function kindOf(req) {
  const u = new URL(req.url, "http://x");
  const comp = u.searchParams.get("comp");
  if (req.method === "PUT" && comp === "block") return "PutBlock";
  if (req.method === "PUT" && comp === "blocklist") return "PutBlockList";
  if (req.method === "GET" && comp === "blocklist") return "GetBlockList";
  if (req.method === "GET" && comp === "list") return "List";
  return `${req.method}${comp ? ":" + comp : ""}`;
}

// A proxy in front of Azurite. policy(req, kind, n) is asked for every
// request (n counts requests so far, from 1) and returns null to forward,
// {status} to answer with that status, or {reset: true} to drop the
// connection. onForwarded(kind, status) runs after a forwarded response.
export function startProxy(upstreamPort, policy = () => null, onForwarded = () => {}) {
  const counts = {};
  let n = 0;
  const server = http.createServer((req, res) => {
    const kind = kindOf(req);
    n++;
    counts[kind] = (counts[kind] || 0) + 1;
    const action = policy(req, kind, n);
    if (action && action.reset) {
      req.socket.destroy();
      return;
    }
    if (action && action.status) {
      req.resume();
      req.on("end", () => {
        const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>Injected</Code><Message>fault ${action.status}</Message></Error>`;
        res.writeHead(action.status, { "Content-Type": "application/xml", "x-ms-error-code": "Injected",
          "Content-Length": Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const up = http.request(
      { host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode, ures.headers);
        ures.pipe(res);
        ures.on("end", () => onForwarded(kind, ures.statusCode));
      },
    );
    up.on("error", () => req.socket.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        server,
        port: server.address().port,
        counts,
        total: () => n,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
