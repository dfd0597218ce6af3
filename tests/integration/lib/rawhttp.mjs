// Hand-signed Cosmos DB REST requests over HTTPS, for the raw negative tests.
// Signing follows the documented master-key scheme (see COSMOS-REST.md):
//   text = lower(verb)\nlower(resourceType)\nresourceLink\nlower(date)\n\n
//   sig  = base64(HMAC-SHA256(base64decode(key), text))
//   authorization = urlencode("type=master&ver=1.0&sig=" + sig)

import crypto from "node:crypto";
import https from "node:https";
import tls from "node:tls";

export function signature({ verb, resourceType, resourceLink, date, key }) {
  const text =
    verb.toLowerCase() + "\n" + resourceType.toLowerCase() + "\n" + resourceLink + "\n" +
    date.toLowerCase() + "\n" + "\n";
  return crypto.createHmac("sha256", Buffer.from(key, "base64")).update(text, "utf8").digest("base64");
}

export function authorization(args) {
  return encodeURIComponent(`type=master&ver=1.0&sig=${signature(args)}`);
}

/** Resource type and link of a request path (the path as sent, percent-encoded). */
export function resourceOf(rawPath) {
  const p = rawPath.split("?")[0];
  const decode = (s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s; // malformed on purpose: sign it as sent
    }
  };
  const segs = p.split("/").filter((s) => s.length > 0).map(decode);
  if (segs.length === 0) return { resourceType: "", resourceLink: "" };
  if (segs.length % 2 === 1) {
    return { resourceType: segs[segs.length - 1], resourceLink: segs.slice(0, -1).join("/") };
  }
  return { resourceType: segs[segs.length - 2], resourceLink: segs.join("/") };
}

export const encodeId = (id) => encodeURIComponent(id);

/**
 * One HTTPS request. Options: method, path, headers (extra/overrides; a value
 * of null removes a default header), body (string|Buffer|object → JSON), key
 * (signing key; default srv.masterKey), date (Date or string), sign (false: no
 * authorization header), timeoutMs.
 * Resolves { status, headers, text, json } where json is the parsed body or
 * undefined.
 */
export function request(srv, opts) {
  const method = opts.method || "GET";
  const reqPath = opts.path || "/";
  const date =
    opts.date instanceof Date ? opts.date.toUTCString() : opts.date || new Date().toUTCString();
  const { resourceType, resourceLink } = resourceOf(reqPath);
  const headers = {
    "x-ms-version": "2020-07-15",
    "x-ms-date": date,
    accept: "application/json",
  };
  if (opts.sign !== false) {
    headers.authorization = authorization({
      verb: method,
      resourceType: opts.resourceType ?? resourceType,
      resourceLink: opts.resourceLink ?? resourceLink,
      date,
      key: opts.key || srv.masterKey,
    });
  }
  let body = opts.body;
  if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== "string") {
    body = JSON.stringify(body);
  }
  if (body !== undefined) headers["content-type"] = "application/json";
  for (const [k, v] of Object.entries(opts.headers || {})) {
    const lk = k.toLowerCase();
    if (v === null) delete headers[lk];
    else headers[lk] = v;
  }
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: srv.host,
        port: srv.port,
        method,
        path: reqPath,
        headers,
        ca: srv.cert,
        agent: false,
        timeout: opts.timeoutMs || 15000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          try {
            json = text.length ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
        res.on("error", reject);
      }
    );
    req.on("timeout", () => req.destroy(new Error(`request timed out: ${method} ${reqPath}`)));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Opens a TLS connection that trusts the server's certificate. */
export function tlsConnect(srv) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: srv.host, port: srv.port, ca: srv.cert, servername: "localhost" });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Builds the bytes of a signed HTTP/1.1 request (for socket-level tests). */
export function rawRequestBytes(srv, { method = "GET", path = "/", body, extraHeaders = {} } = {}) {
  const date = new Date().toUTCString();
  const { resourceType, resourceLink } = resourceOf(path);
  const auth = authorization({ verb: method, resourceType, resourceLink, date, key: srv.masterKey });
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${srv.host}:${srv.port}`,
    `x-ms-version: 2020-07-15`,
    `x-ms-date: ${date}`,
    `authorization: ${auth}`,
    `accept: application/json`,
  ];
  for (const [k, v] of Object.entries(extraHeaders)) lines.push(`${k}: ${v}`);
  const b = body === undefined ? null : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  if (b) {
    lines.push("content-type: application/json", `content-length: ${b.length}`);
  }
  return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), b || Buffer.alloc(0)]);
}

/** Reads from a socket until `done(buffer)` is true, the socket ends, or the timeout. */
export function readUntil(sock, done, timeoutMs = 5000) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let ended = false;
    const finish = () => {
      clearTimeout(t);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("close", onEnd);
      sock.off("error", onEnd);
      resolve({ data: buf, ended });
    };
    const onData = (c) => {
      buf = Buffer.concat([buf, c]);
      if (done(buf)) finish();
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    const t = setTimeout(finish, timeoutMs);
    sock.on("data", onData);
    sock.on("end", onEnd);
    sock.on("close", onEnd);
    sock.on("error", onEnd);
  });
}

/** A complete HTTP/1.1 response with Content-Length has arrived in buf. */
export function responseComplete(buf) {
  const s = buf.toString("latin1");
  const i = s.indexOf("\r\n\r\n");
  if (i < 0) return false;
  const m = s.slice(0, i).match(/content-length:\s*(\d+)/i);
  if (!m) return /transfer-encoding:\s*chunked/i.test(s.slice(0, i)) ? s.endsWith("0\r\n\r\n") : true;
  return buf.length >= i + 4 + Number(m[1]);
}

export function statusOf(buf) {
  const m = buf.toString("latin1").match(/^HTTP\/1\.[01] (\d{3})/);
  return m ? Number(m[1]) : null;
}
