// Starts the real atrestd for one test file and stops it again.
//
// Each call to startServer() gets a free loopback port and a fresh temporary
// folder holding data/, keys/ and the server's captured output (server.log:
// stdout and stderr together, kept for the no-plaintext check). The server's
// self-signed certificate is found from the line it prints at start (a line
// naming a "cert" and a .pem/.crt path), falling back to any file under the
// key folder that holds a PEM certificate. Clients trust exactly that
// certificate: TLS verification stays on.
//
// Environment:
//   ATREST_BIN       the atrestd binary (default: <repo>/build/atrestd)
//   ATREST_KEEP_TMP  keep the temporary folders (their path is printed)

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const EMULATOR_KEY =
  "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "..", "..", "..");

export function serverBinary() {
  const bin = process.env.ATREST_BIN || path.join(REPO_ROOT, "build", "atrestd");
  if (!fs.existsSync(bin)) {
    throw new Error(`atrestd not found at ${bin} (set ATREST_BIN)`);
  }
  return path.resolve(bin);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tcpReady(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on("connect", () => done(true));
    sock.on("error", () => done(false));
  });
}

// The certificate path from the server's output: the first line mentioning a
// certificate that carries a .pem or .crt path.
export function certPathFromOutput(text, cwd) {
  for (const line of text.split(/\r?\n/)) {
    if (!/cert/i.test(line)) continue;
    const m = line.match(/((?:[A-Za-z]:)?[^\s"'=:,;()<>]*\.(?:pem|crt))\b/);
    if (!m) continue;
    const p = path.resolve(cwd, m[1]);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function certPathFromKeyDir(dir) {
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    let entries = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile() && /\.(pem|crt)$/.test(e.name)) {
        const t = fs.readFileSync(p, "latin1");
        if (t.includes("BEGIN CERTIFICATE")) return p;
      }
    }
  }
  return null;
}

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer/;

/**
 * Starts atrestd. Options:
 *   root         reuse an existing temporary folder (restart on the same data)
 *   masterKey, secondaryKey, readonlyKey   base64 keys passed on the command line
 *   args         extra command-line arguments
 * Returns a handle: { endpoint, port, cert, certPath, root, dataDir, keyDir,
 *   logPath, masterKey, readonlyKey, secondaryKey, proc, alive(), log(),
 *   stop({signal, timeoutMs}) }.
 */
export async function startServer(opts = {}) {
  const bin = serverBinary();
  const root = opts.root || fs.mkdtempSync(path.join(os.tmpdir(), "atrest-it-"));
  const dataDir = path.join(root, "data");
  const keyDir = path.join(root, "keys");
  const masterKey = opts.masterKey || EMULATOR_KEY;

  let lastError = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const logPath = path.join(root, `server-${Date.now()}-${attempt}.log`);
    // --log-requests: the no-plaintext suite checks the request log too.
    const args = ["--data-dir", dataDir, "--key-dir", keyDir, "--listen", `127.0.0.1:${port}`, "--log-requests"];
    if (opts.masterKey) args.push("--master-key", opts.masterKey);
    if (opts.secondaryKey) args.push("--secondary-key", opts.secondaryKey);
    if (opts.readonlyKey) args.push("--readonly-key", opts.readonlyKey);
    if (opts.args) args.push(...opts.args);

    const fd = fs.openSync(logPath, "a");
    const proc = spawn(bin, args, { cwd: root, stdio: ["ignore", fd, fd] });
    fs.closeSync(fd);
    let exited = null;
    const exitPromise = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        exited = { code, signal };
        resolve(exited);
      });
    });
    proc.on("error", (e) => {
      lastError = e;
    });

    const readLog = () => {
      try {
        return fs.readFileSync(logPath, "utf8");
      } catch {
        return "";
      }
    };

    const deadline = Date.now() + 5000;
    let certPath = null;
    let ready = false;
    while (Date.now() < deadline && !exited) {
      if (!certPath) certPath = certPathFromOutput(readLog(), root);
      if (await tcpReady(port)) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready && !certPath) {
      // The line may be flushed just after the socket opens.
      const until = Date.now() + 1000;
      while (!certPath && Date.now() < until) {
        certPath = certPathFromOutput(readLog(), root);
        if (!certPath) await sleep(50);
      }
      if (!certPath) certPath = certPathFromKeyDir(keyDir);
    }
    if (!ready || exited) {
      if (!exited) {
        proc.kill("SIGKILL");
        await exitPromise;
      }
      const out = readLog();
      lastError = new Error(
        `atrestd did not start (exit ${JSON.stringify(exited)}); output:\n${out.slice(-4000)}`
      );
      if (/in use|EADDRINUSE|bind/i.test(out)) continue; // lost the port race: retry
      break;
    }
    if (!certPath) {
      proc.kill("SIGKILL");
      await exitPromise;
      throw new Error(`no certificate path printed by atrestd nor found under ${keyDir}:\n${readLog()}`);
    }

    const cert = fs.readFileSync(certPath);
    const handle = {
      endpoint: `https://127.0.0.1:${port}`,
      host: "127.0.0.1",
      port,
      cert,
      certPath,
      root,
      dataDir,
      keyDir,
      logPath,
      masterKey,
      secondaryKey: opts.secondaryKey,
      readonlyKey: opts.readonlyKey,
      proc,
      exitInfo: () => exited,
      alive: () => exited === null && proc.exitCode === null && proc.signalCode === null,
      log: readLog,
      /** All output of every server started in this folder. */
      allLogs() {
        return fs
          .readdirSync(root)
          .filter((f) => /^server-.*\.log$/.test(f))
          .map((f) => fs.readFileSync(path.join(root, f)))
          .reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0));
      },
      /**
       * Stops the server: `signal` (default SIGTERM), then SIGKILL after
       * timeoutMs. Returns { code, signal, forced, sanitizer } where sanitizer
       * is the first sanitizer report line found in the output, if any.
       */
      async stop({ signal = "SIGTERM", timeoutMs = 10000 } = {}) {
        let forced = false;
        if (!exited) {
          proc.kill(signal);
          const t = setTimeout(() => {
            forced = true;
            proc.kill("SIGKILL");
          }, timeoutMs);
          await exitPromise;
          clearTimeout(t);
        }
        const out = readLog();
        const m = out.match(SANITIZER_RE);
        return { ...exited, forced, sanitizer: m ? out.slice(m.index, m.index + 2000) : null };
      },
      /** Removes the temporary folder unless ATREST_KEEP_TMP is set. */
      cleanup() {
        if (process.env.ATREST_KEEP_TMP) {
          process.stderr.write(`atrest-it: kept ${root}\n`);
          return;
        }
        fs.rmSync(root, { recursive: true, force: true });
      },
    };
    return handle;
  }
  throw lastError || new Error("atrestd did not start");
}

/**
 * Stops a server started for a test file and fails if it did not stop
 * cleanly: SIGTERM must end it within the timeout with exit status 0, and its
 * output must hold no sanitizer report.
 */
export async function stopAndCheck(srv, assert) {
  const r = await srv.stop();
  const out = srv.log();
  srv.cleanup();
  assert.equal(r.sanitizer, null, `sanitizer report in atrestd output:\n${r.sanitizer}`);
  assert.equal(r.forced, false, "atrestd did not exit within 10 s of SIGTERM");
  assert.deepEqual(
    { code: r.code, signal: r.signal },
    { code: 0, signal: null },
    `atrestd did not shut down cleanly on SIGTERM; output tail:\n${out.slice(-2000)}`
  );
}
