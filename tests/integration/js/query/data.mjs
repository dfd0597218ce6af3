// The fixed data set of the query corpus (corpus.mjs). Every document goes
// into a container partitioned on /pk; the partition key values are the
// groups below. Most documents are the documentation's own examples:
//   - "families": the Families items of the Cosmos DB query getting-started
//     pages (AndersenFamily, WakefieldFamily) plus one family with no children;
//   - "employees" / "products": the seed.json items of
//     github.com/Azure-Samples/cosmos-db-nosql-query-samples (scripts/*/seed.json),
//     which the learn.microsoft.com query reference pages show with their
//     queries and results; items that appear in several samples are kept once;
//     the self-join items of nosql/query/join.md; the subquery items of
//     nosql/query/subquery.md; the trekking poles of
//     nosql/query/ternary-coalesce-operators.md (those lacked ids and a
//     category: added so queries can isolate them);
// and documents built for tricky semantics:
//   - "types" (kind "t"): t01..t16, property v of every JSON type (missing,
//     null, booleans, numbers incl. 1.5, -2, 0, 1e20, strings incl. "" and
//     "1", one array, one object), i = 1..16, n = i, g = "x" (i <= 8) / "y";
//   - "strings" (kind "s"): s01..s12, property s with accents, CJK, an astral
//     emoji, quotes, backslash, control characters, padding, % and _;
//   - "misc" (kind "m"): m01..m08, property names with spaces/dots/non-ASCII,
//     nested arrays, arrays of objects, ISO dates, large and negative numbers.
// Numbers are doubles end to end (1 and 1.0 are the same number to the SDK).

const fam = [
  {
    id: "AndersenFamily",
    lastName: "Andersen",
    parents: [{ firstName: "Thomas" }, { firstName: "Mary Kay" }],
    children: [{ firstName: "Henriette Thaulow", gender: "female", grade: 5, pets: [{ givenName: "Fluffy" }] }],
    address: { state: "WA", county: "King", city: "Seattle" },
    creationDate: 1431620472,
    isRegistered: true,
  },
  {
    id: "WakefieldFamily",
    parents: [
      { familyName: "Wakefield", givenName: "Robin" },
      { familyName: "Miller", givenName: "Ben" },
    ],
    children: [
      {
        familyName: "Merriam",
        givenName: "Jesse",
        gender: "female",
        grade: 1,
        pets: [{ givenName: "Goofy" }, { givenName: "Shadow" }],
      },
      { familyName: "Miller", givenName: "Lisa", gender: "female", grade: 8 },
    ],
    address: { state: "NY", county: "Manhattan", city: "NY" },
    creationDate: 1431620462,
    isRegistered: false,
  },
  {
    id: "NoKidsFamily",
    lastName: "Nokids",
    parents: [{ firstName: "Ola" }],
    address: { state: "WA", county: "King", city: "Redmond" },
    creationDate: 1431620480,
    isRegistered: true,
  },
].map((d) => ({ ...d, pk: "families" }));

const emp = [
  // group-by, group-by-aggregate, group-by-multiple
  { id: "3548979698", name: "Jordan Mitchell", capabilities: { softwareDevelopment: "python", mediaTrained: true }, team: "Cloud software engineering" },
  { id: "4228924547", name: "Mikaela Lee", capabilities: { softwareDevelopment: "javascript", mediaTrained: false }, team: "Cloud software engineering" },
  { id: "2941063066", name: "Graham Barnes", capabilities: { softwareDevelopment: "c-sharp", mediaTrained: true }, team: "Cloud software engineering" },
  { id: "9318573296", name: "Hayden Cook", capabilities: { softwareDevelopment: "javascript", mediaTrained: true }, team: "Cloud software engineering" },
  { id: "3601062997", name: "Morgan Connors", capabilities: { mediaTrained: true }, team: "Cloud software engineering" },
  { id: "7074932233", name: "Devon Torres", capabilities: { softwareDevelopment: "python", mediaTrained: false }, team: "Cloud software engineering" },
  { id: "3798545532", name: "Sam Centrell", capabilities: { softwareDevelopment: "javascript", mediaTrained: true }, team: "Cloud software engineering" },
  // offset-limit, offset-limit-partial, offset-limit-none
  { id: "5929071063", name: "Sawyer Miller", team: "Leadership team" },
  { id: "1599541170", name: "Jennifer Wilkins", team: "Leadership team" },
  { id: "9461206378", name: "Hannah Haynes", team: "Leadership team" },
  { id: "3261752803", name: "Isaac Talbot", team: "Leadership team" },
  { id: "5011271389", name: "Riley Johnson", team: "Leadership team" },
  // order-by, order-by-desc, order-by-multiple
  { id: "7600090320", name: { first: "Casey", last: "Jensen" }, team: "Human resources" },
  { id: "8263106050", name: { first: "Amari", last: "Rivera" }, team: "Human resources" },
  { id: "8699698812", name: { first: "Kayla", last: "Lewis" }, team: "Human resources" },
  // where
  { id: "9088760876", name: "Jordan Mitchell", team: "Hospitality" },
  { id: "4482760136", name: "Ashley Schroeder", team: "Hospitality" },
  { id: "7911848835", name: "Tomas Richardson", team: "Hospitality" },
  // where-field
  { id: "7955766483", name: "Riley Ramirez", partTime: true, team: "Facilities" },
  { id: "9540450934", name: "Cora Thomas", partTime: false, team: "Facilities" },
  { id: "3089581802", name: "Caleb Foster", partTime: true, team: "Facilities" },
  // where-scalar
  { id: "3739792186", name: "Ana Bowman", vacationDays: 10, team: "Software engineering" },
  { id: "2956300999", name: "Madison Butler", vacationDays: 7, team: "Software engineering" },
  { id: "7669068854", name: "Casey Jensen", vacationDays: 6, team: "Software engineering" },
  // select-fields
  { id: "3834754693", team: "Field sales", identity: { name: "Parker McLean" }, contact: ["206-555-0147"] },
  { id: "6099791965", team: "Field sales", identity: { name: "Beibit Shayakhmet" }, contact: ["206-555-0178"] },
  // from
  { id: "3719350841", name: "Tijana Stanković", workLocation: { office: "Redmond, WA" }, team: "Tech support" },
  { id: "6072808750", name: "Jean Nadeau", workLocation: { type: "Remote" }, team: "Tech support" },
  // from-field
  { id: "6339549442", name: "Cris Barros", employment: { hireDateTime: "2023-01-01T06:30:00.000Z", weeklyHours: 40, team: "Retail support" } },
  { id: "5859346714", name: "Eduarda Dias", employment: { hireDateTime: "2023-01-01T09:30:00.000Z", team: "Retail support" } },
  { id: "4968499169", name: "Darweshi Mhina", employment: { hireDateTime: "2023-01-01T15:30:00.000Z", weeklyHours: 32, team: "Retail support" } },
].map((d) => ({ ...d, pk: "employees" }));

const prod = [
  // nosql/query/join.md
  {
    id: "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb",
    categoryId: "bbbbbbbb-1111-2222-3333-cccccccccccc",
    name: "Teapo Surfboard (6'10\") Grape",
    sku: "teapo-surfboard-72109",
    tags: [
      { id: "cccccccc-2222-3333-4444-dddddddddddd", slug: "tail-shape-swallow", name: "Tail Shape: Swallow" },
      { id: "dddddddd-3333-4444-5555-eeeeeeeeeeee", slug: "length-inches-82", name: "Length: 82 inches" },
      { id: "eeeeeeee-4444-5555-6666-ffffffffffff", slug: "color-group-purple", name: "Color Group: Purple" },
    ],
  },
  {
    id: "ffffffff-5555-6666-7777-aaaaaaaaaaaa",
    categoryId: "cccccccc-8888-9999-0000-dddddddddddd",
    categoryName: "Sleeping Bags",
    name: "Maresse Sleeping Bag (6') Ming",
    sku: "maresse-sleeping-bag-65503",
    tags: [
      { id: "b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2", slug: "bag-shape-mummy", name: "Bag Shape: Mummy" },
      { id: "bbbbbbbb-7777-8888-9999-cccccccccccc", slug: "bag-insulation-down-fill", name: "Bag Insulation: Down Fill" },
    ],
  },
  {
    id: "c2c2c2c2-dddd-eeee-ffff-a3a3a3a3a3a3",
    categoryId: "cccccccc-8888-9999-0000-dddddddddddd",
    categoryName: "Sleeping Bags",
    name: "Vareno Sleeping Bag (6') Turmeric",
    sku: "vareno-sleeping-bag-65508",
    tags: [
      { id: "dddddddd-9999-0000-1111-eeeeeeeeeeee", slug: "bag-insulation-synthetic-fill", name: "Bag Insulation: Synthetic Fill" },
      { id: "a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1", slug: "color-group-yellow", name: "Color Group: Yellow" },
      { id: "b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2", slug: "bag-shape-mummy", name: "Bag Shape: Mummy" },
    ],
  },
  // nosql/query/subquery.md (ids added)
  {
    id: "snow-coat",
    name: "Snow coat",
    inventory: [
      { location: "Redmond, WA", quantity: 50 },
      { location: "Seattle, WA", quantity: 30 },
      { location: "Washington, DC", quantity: 25 },
    ],
  },
  {
    id: "unobtani-road-bike",
    name: "Unobtani road bike",
    accessories: [
      { name: "Front/rear tire", type: "tire", quantityOnHand: 5 },
      { name: "9-speed chain", type: "chains", quantityOnHand: 25 },
      { name: "Clip-in pedals", type: "pedals", quantityOnHand: 15 },
    ],
  },
  { id: "radimer-mountain-bike", name: "Radimer mountain bike", tags: [{ name: "road" }, { name: "bike" }, { name: "competitive" }] },
  // nosql/query/ternary-coalesce-operators.md (ids and category added)
  { id: "poles-1", category: "poles", name: "Stangincy trekking poles", price: 24.5, onCloseout: false, onSale: true, collapsible: true },
  { id: "poles-2", category: "poles", name: "Vimero hiking poles", price: 24.5, onCloseout: false, onSale: false },
  { id: "poles-3", category: "poles", name: "Kramundsen trekking poles", price: 24.5, onCloseout: true, onSale: true, collapsible: false },
  // cosmos-db-nosql-query-samples seeds
  { id: "8601166197", name: "Glaark bag", category: "small-bags", price: 20.28 },
  { id: "4762595687", name: "Astoney pack", category: "small-bags", price: 5.11 },
  { id: "8256269564", name: "Icento pack", category: "small-bags", price: 62.21 },
  { id: "68719519522", name: "Gremon Fins", sku: "73311", tags: ["Science Blue", "Turbo"], category: "short-fins" },
  { id: "7069457172", slug: "duonovi-pro-coat", model: "8061", category: "heavy-coats" },
  { id: "5922901576", name: "Horric socks", category: "socks" },
  { id: "1859046259", name: "Shinity socks", category: "socks" },
  { id: "3656853690", category: "socks" },
  { id: "68719519221", name: "Estrel Set Cutlery", onSale: true, category: "camp-utensils", pricing: { msrp: 55.95, sale: 30.85 } },
  { id: "68719520367", name: "Willagno Spork", onSale: false, category: "camp-utensils", pricing: { msrp: 20.15, sale: 12.55 } },
  { id: "5936449505", price: 71.76, name: "Iroowl bracelet", category: "activity-bracelet" },
  { id: "4426745018", price: 27.07, name: "Icenty bracelet", category: "activity-bracelet" },
  { id: "5509201658", price: 87.66, name: "Genish bracelet", category: "fashion-bracelet" },
  { id: "9888912168", price: 27.6, name: "Plative bracelet", category: "fashion-bracelet" },
  { id: "5459459234", name: "Witalica helmet", category: "sport-helmets", quantities: { small: 15, medium: 24, large: 2, xlarge: 0 } },
  { id: "6875157296", name: "Tecozow coat", category: "winter-coats" },
  { id: "8286303747", name: "Bladnick coat", category: "winter-coats" },
  { id: "8739627712", name: "Anidin heavy jacket", category: "winter-coats" },
  { id: "5688704115", name: "Snowilla vest", inStockColors: ["Rhino", "Finch"], colors: ["Finch", "Mine Shaft", "Rhino"], category: "modern-vests" },
  {
    id: "7799732288",
    name: "Malsca coat",
    category: "seasonal-coats",
    colors: [
      { season: "Winter", values: ["Cutty Sark", "Horizon", "Russet", "Fuscous"] },
      { season: "Summer", values: ["Fuscous", "Horizon", "Tacha"] },
    ],
  },
  { id: "6934271175", name: "Cosmoxy pack", quantity: 35, category: "hiking-bags" },
  { id: "1899728849", name: "Heliont pack", category: "hiking-bags" },
  { id: "9468832354", name: "Immery bag", quantity: 15, category: "hiking-bags" },
].map((d) => ({ ...d, pk: "products" }));

// kind "t": one property v of every type. i = n = 1..16; g = "x" for i <= 8.
const tv = [
  undefined, // t01: v missing
  null, // t02
  false, // t03
  true, // t04
  1, // t05
  1.5, // t06
  -2, // t07
  0, // t08
  1e20, // t09
  "1", // t10
  "a", // t11
  "B", // t12
  "", // t13
  [1, 2], // t14
  { a: 1 }, // t15
  10, // t16
];
const types = tv.map((v, k) => {
  const i = k + 1;
  const d = { id: `t${String(i).padStart(2, "0")}`, pk: "types", kind: "t", i, n: i, g: i <= 8 ? "x" : "y" };
  if (v !== undefined) d.v = v;
  return d;
});

// kind "s": strings. i = 1..12.
const sv = [
  "café", // s01 (é is U+00E9)
  "CAFÉ", // s02
  "日本語テキスト", // s03
  "emoji 😀 here", // s04 (U+1F600: two UTF-16 code units)
  "quote \" and 'single'", // s05
  "back\\slash", // s06
  "tab\there\nnewline", // s07
  "", // s08
  "  padded  ", // s09
  "100%", // s10
  "under_score", // s11
  "Ünïcödé", // s12
];
const strings = sv.map((s, k) => ({ id: `s${String(k + 1).padStart(2, "0")}`, pk: "strings", kind: "s", i: k + 1, s }));

const misc = [
  { id: "m01", "a b": 1, arr: [1, [2, 3], { x: 1 }], dt: "2024-01-15T10:30:00.0000000Z", big: 9007199254740991, neg: -0.5 },
  { id: "m02", "a b": "two", dt: "2023-12-31T23:59:59.9999999Z", big: -9007199254740991, neg: -1e-7, nested: { deep: { deeper: { v: 42 } } } },
  { id: "m03", items: [{ name: "a", qty: 1, color: "red" }, { name: "b", qty: 5, color: "blue" }], dt: "2020-02-29T00:00:00.0000000Z" },
  { id: "m04", items: [{ name: "c", qty: 10, color: "red" }], dt: "not a date" },
  { id: "m05", items: [], "a b": null },
  { id: "m06", items: "not-an-array" },
  { id: "m07", arr2d: [[1, 2], [3, 4]], "with.dot": 5, $dollar: 6 },
  { id: "m08", uni: "ñ", ключ: "значение" },
].map((d) => ({ ...d, pk: "misc", kind: "m" }));

export const documents = [...fam, ...emp, ...prod, ...types, ...strings, ...misc];
export const partitionKeys = ["families", "employees", "products", "types", "strings", "misc"];
