import { startWithClient, shutdown } from "./sdk/common.mjs";
const env = await startWithClient({});
const { client } = env;
const { database } = await client.databases.createIfNotExists({ id: "p" });
const { container } = await database.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/pk"] } });
const docs = [
 { id: "AndersenFamily", pk: "a", lastName: "Andersen", parents: [{ firstName: "Thomas" }, { firstName: "Mary Kay" }],
   children: [{ firstName: "Henriette Thaulow", gender: "female", grade: 5, pets: [{ givenName: "Fluffy" }] }],
   address: { state: "WA", county: "King", city: "Seattle" }, creationDate: 1431620472, isRegistered: true },
 { id: "WakefieldFamily", pk: "b", parents: [{ familyName: "Wakefield", givenName: "Robin" }, { familyName: "Miller", givenName: "Ben" }],
   children: [{ familyName: "Merriam", givenName: "Jesse", gender: "female", grade: 1, pets: [{ givenName: "Goofy" }, { givenName: "Shadow" }] },
              { familyName: "Miller", givenName: "Lisa", gender: "female", grade: 8 }],
   address: { state: "NY", county: "Manhattan", city: "NY" }, creationDate: 1431620462, isRegistered: false },
];
for (const d of docs) await container.items.upsert(d);
const cases = JSON.parse(process.argv[2] ? (await import("node:fs")).readFileSync(process.argv[2], "utf8") : "[]");
let bad = 0;
for (const [q, exp] of cases) {
  let got;
  try {
    const r = await container.items.query(q).fetchAll();
    got = r.resources;
  } catch (e) { got = "ERR " + e.code + " " + (e.message || "").slice(0, 200); }
  const gs = JSON.stringify(got), es = JSON.stringify(exp);
  if (gs !== es) { bad++; console.log("MISMATCH", q, "\n   got", gs.slice(0, 400), "\n   exp", es); }
}
console.log("done", cases.length, "bad", bad);
await shutdown(env);
