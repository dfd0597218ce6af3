// The query acceptance corpus (corpus.mjs over data.mjs) through @azure/cosmos.
//
// One atrestd; one database with two containers partitioned on /pk holding the
// same documents: "indexed" (consistent indexing of every path plus the
// composite indexes the corpus's multi-field ORDER BY queries need) and
// "noindex" (indexingMode none, automatic false). Every corpus query runs in
// both, cross-partition unless the entry names a partition key, at
// maxItemCount 1, 7 and -1 (unlimited) with fetchAll, and again page by page
// with fetchNext at 1 and 7 (the concatenated pages must equal the result).
// Expected results come from the Cosmos DB documentation (see corpus.mjs);
// unordered entries compare as multisets.
//
// Failures are collected and reported together at the end (query name, the
// query, got vs expected), so one run shows the whole list. The report is also
// written to $ATREST_QUERY_REPORT when set.
//
// Environment:
//   ATREST_QUERY_FILTER  a regular expression: run only entries whose name matches
//   ATREST_QUERY_QUICK=1 only the indexed container at maxItemCount -1
//   ATREST_QUERY_REPORT  file to write the failure report to
//   ATREST_QUERY_BUDGET_MS  stop running entries after this long (default
//                        480000, under ctest's 600 s) and report what ran

import fs from "node:fs";
import { after, before, test } from "node:test";
import { assert, shutdown, startWithClient, uid } from "../sdk/common.mjs";
import { documents } from "./data.mjs";
import { corpus, compositeIndexes, errorCorpus } from "./corpus.mjs";

let ctx;
const containers = {};
const filter = process.env.ATREST_QUERY_FILTER ? new RegExp(process.env.ATREST_QUERY_FILTER) : null;
const quick = !!process.env.ATREST_QUERY_QUICK;
const pick = (list) => (filter ? list.filter((e) => filter.test(e.name)) : list);

before(async () => {
  // merges of the index log every 97 logged keys: the corpus reads entries
  // merged into the index and entries still in the log (ixdelta.c)
  ctx = await startWithClient({ args: ["--index-merge-keys", "97"] });
  const { database } = await ctx.client.databases.createIfNotExists({ id: uid("qdb-") });
  const policies = {
    indexed: {
      indexingMode: "consistent",
      automatic: true,
      includedPaths: [{ path: "/*" }],
      excludedPaths: [{ path: '/"_etag"/?' }],
      compositeIndexes,
    },
    noindex: { indexingMode: "none", automatic: false },
  };
  for (const [name, indexingPolicy] of Object.entries(policies)) {
    const { container } = await database.containers.createIfNotExists({
      id: name,
      partitionKey: { paths: ["/pk"] },
      indexingPolicy,
    });
    // A few writes at a time: the documents are small.
    for (let k = 0; k < documents.length; k += 8) {
      await Promise.all(documents.slice(k, k + 8).map((d) => container.items.create(d)));
    }
    containers[name] = container;
  }
});

after(async () => {
  await shutdown(ctx);
});

// ---- comparison ----

const SYSTEM = ["_rid", "_self", "_etag", "_attachments", "_ts", "_lsn"];
const isStar = (q) => /^\s*SELECT\s+(DISTINCT\s+)?(TOP\s+\S+\s+)?\*/i.test(q);

function stripSystem(rows) {
  return rows.map((r) => {
    if (!r || typeof r !== "object" || Array.isArray(r)) return r;
    const o = { ...r };
    for (const k of SYSTEM) delete o[k];
    return o;
  });
}

/** JSON with object keys sorted: equal values give equal text. */
function canon(v) {
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  if (v && typeof v === "object") {
    return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

function approxEq(a, b) {
  if (typeof a === "number" && typeof b === "number") {
    if (a === b) return true;
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => approxEq(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return canon(ka) === canon(kb) && ka.every((k) => approxEq(a[k], b[k]));
  }
  return canon(a) === canon(b);
}

/** Whether got equals want: in order, or as multisets. */
function same(got, want, { ordered, approx }) {
  if (!Array.isArray(got) || got.length !== want.length) return false;
  const eq = approx ? approxEq : (a, b) => canon(a) === canon(b);
  if (ordered) return got.every((g, i) => eq(g, want[i]));
  if (!approx) {
    const a = got.map(canon).sort();
    const b = want.map(canon).sort();
    return a.every((x, i) => x === b[i]);
  }
  const left = [...want];
  for (const g of got) {
    const i = left.findIndex((w) => eq(g, w));
    if (i < 0) return false;
    left.splice(i, 1);
  }
  return true;
}

const show = (v) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 1500 ? s.slice(0, 1500) + "…" : s;
};

function describeError(e) {
  const body = e && e.body ? show(e.body).slice(0, 400) : "";
  return `${e && e.code !== undefined ? "HTTP " + e.code + " " : ""}${(e && e.message ? e.message : String(e)).split("\n")[0].slice(0, 400)}${body ? " body " + body : ""}`;
}

// ---- running ----

function feedOptions(entry, maxItemCount) {
  const o = { maxItemCount };
  if (entry.pk !== undefined) o.partitionKey = entry.pk;
  return o;
}
const spec = (e) => ({ query: e.query, parameters: e.parameters || [] });

async function runAll(container, entry, maxItemCount) {
  const r = await container.items.query(spec(entry), feedOptions(entry, maxItemCount)).fetchAll();
  return r.resources;
}

async function runPaged(container, entry, maxItemCount) {
  const it = container.items.query(spec(entry), feedOptions(entry, maxItemCount));
  const rows = [];
  let pages = 0;
  while (it.hasMoreResults()) {
    const r = await it.fetchNext();
    if (r.resources) rows.push(...r.resources);
    if (++pages > 2000) throw new Error("paging did not end after 2000 pages");
  }
  return { rows, pages };
}

const summary = { entries: 0, runs: 0, failedEntries: new Set(), byFeature: {} };
const failures = [];

function fail(entry, where, detail) {
  summary.failedEntries.add(entry.name);
  failures.push({ name: entry.name, where, query: entry.query, parameters: entry.parameters, detail, unsure: !!entry.unsure });
}

function tally(entry, ok) {
  const f = entry.name.split(".")[0];
  const t = (summary.byFeature[f] ||= { pass: 0, fail: 0 });
  if (ok) t.pass++;
  else t.fail++;
}

test("query corpus: every entry in both containers, at maxItemCount 1, 7 and unlimited, paged and unpaged", { timeout: 560_000 }, async () => {
  const entries = pick(corpus);
  const names = new Set();
  for (const e of corpus) {
    assert.ok(!names.has(e.name), `duplicate corpus entry name ${e.name}`);
    names.add(e.name);
    assert.ok(Array.isArray(e.expected), `${e.name}: expected must be an array`);
  }
  const runs = quick ? [["indexed", -1]] : [["indexed", 1], ["indexed", 7], ["indexed", -1], ["noindex", 1], ["noindex", 7], ["noindex", -1]];
  const pagedRuns = quick ? [] : [["indexed", 1], ["indexed", 7], ["noindex", 7]];
  const deadline = Date.now() + (Number(process.env.ATREST_QUERY_BUDGET_MS) || 480_000);
  let skipped = 0;
  for (const entry of entries) {
    if (Date.now() > deadline) {
      skipped++;
      continue;
    }
    summary.entries++;
    const before = failures.length;
    const opts = { ordered: !!entry.ordered, approx: !!entry.approx };
    const fix = (rows) => (isStar(entry.query) ? stripSystem(rows) : rows);
    let unpaged = null;
    for (const [cname, mic] of runs) {
      summary.runs++;
      const where = `${cname} maxItemCount ${mic}`;
      let got;
      try {
        got = fix(await runAll(containers[cname], entry, mic));
      } catch (e) {
        fail(entry, where, `error ${describeError(e)}; expected ${show(entry.expected)}`);
        continue;
      }
      if (entry.check) {
        const why = entry.check(got);
        if (why) fail(entry, where, `${why}; got ${show(got)}`);
      } else if (!same(got, entry.expected, opts)) {
        fail(entry, where, `got ${show(got)}; expected ${show(entry.expected)}${opts.ordered ? " (ordered)" : " (any order)"}`);
      }
      if (cname === "indexed" && mic === -1) unpaged = got;
    }
    for (const [cname, mic] of pagedRuns) {
      summary.runs++;
      const where = `${cname} fetchNext maxItemCount ${mic}`;
      try {
        const { rows } = await runPaged(containers[cname], entry, mic);
        const got = fix(rows);
        const want = entry.check ? unpaged : entry.expected;
        if (want && !entry.check && !same(got, want, opts)) {
          fail(entry, where, `concatenated pages ${show(got)}; expected ${show(want)}`);
        } else if (entry.check) {
          const why = entry.check(got);
          if (why) fail(entry, where, `${why}; concatenated pages ${show(got)}`);
        }
      } catch (e) {
        fail(entry, where, `error ${describeError(e)}`);
      }
    }
    tally(entry, failures.length === before);
  }

  // Queries that must fail with 400 and a message.
  for (const entry of pick(errorCorpus)) {
    summary.entries++;
    const before = failures.length;
    for (const cname of quick ? ["indexed"] : ["indexed", "noindex"]) {
      summary.runs++;
      let err = null;
      let rows;
      try {
        rows = await runAll(containers[cname], entry, -1);
      } catch (e) {
        err = e;
      }
      if (!err) {
        fail(entry, cname, `expected HTTP 400, the query succeeded with ${show(rows)}`);
      } else if (err.code !== 400) {
        fail(entry, cname, `expected HTTP 400, got ${describeError(err)}`);
      } else if (!err.message || !String(err.message).trim()) {
        fail(entry, cname, "HTTP 400 with an empty message");
      }
    }
    tally(entry, failures.length === before);
  }

  if (skipped) {
    failures.push({ name: "(time budget)", where: "runner", query: "", detail: `${skipped} entries not run: the time budget ran out`, unsure: false });
  }
  const lines = [];
  lines.push(`query corpus: ${summary.entries} entries, ${summary.runs} runs, ${summary.failedEntries.size} entries failing, ${failures.length} failed runs`);
  lines.push(
    "by feature (pass/fail entries): " +
      Object.entries(summary.byFeature)
        .map(([f, t]) => `${f} ${t.pass}/${t.fail}`)
        .join(", ")
  );
  // One block per entry; runs that failed the same way share one line.
  const byName = new Map();
  for (const f of failures) {
    if (!byName.has(f.name)) byName.set(f.name, { f, details: new Map() });
    const d = byName.get(f.name).details;
    if (!d.has(f.detail)) d.set(f.detail, []);
    d.get(f.detail).push(f.where);
  }
  for (const { f, details } of byName.values()) {
    lines.push("");
    lines.push(`✗ ${f.name}${f.unsure ? " (unsure: documentation ambiguous)" : ""}`);
    lines.push(`    query: ${f.query.replace(/\s+/g, " ").slice(0, 600)}`);
    if (f.parameters) lines.push(`    parameters: ${show(f.parameters)}`);
    for (const [detail, wheres] of details) lines.push(`    [${wheres.join("; ")}] ${detail}`);
  }
  const report = lines.join("\n");
  if (process.env.ATREST_QUERY_REPORT) fs.writeFileSync(process.env.ATREST_QUERY_REPORT, report + "\n");
  console.log(report.split("\n").slice(0, 2).join("\n"));
  assert.equal(failures.length, 0, "\n" + report);
});
