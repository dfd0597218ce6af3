// The query acceptance corpus: queries over data.mjs (and constant queries)
// with the results Azure Cosmos DB for NoSQL returns, derived from the
// documentation and its examples, never from atrest's output.
//
// Entry: { name, query, parameters?, expected, ordered, pk?, approx?, check?,
//          unsure?, note?, src? }
//   name      "<feature>.<case>"; the feature prefix groups the report
//   expected  the result rows (an array). ordered: false compares as multisets
//   pk        run as a single-partition query with this partition key
//   approx    numbers compare with a relative tolerance of 1e-9 (math results
//             that depend on the C library's last bit)
//   check     (rows) => null | "why not": for results that only have a shape
//   unsure    the documentation is ambiguous here; note says what is assumed
//   src       where the example or the rule comes from
//
// Sources: learn.microsoft.com/azure/cosmos-db/nosql/query/* (the reference
// pages), and github.com/Azure-Samples/cosmos-db-nosql-query-samples, the
// query/result pairs those pages embed (scripts/<name>/query.sql and
// result.json; items from seed.json are in data.mjs). Sample results were
// validated against the service by that repository, except files named
// *.novalidate.*, which are marked unsure here.

import { documents } from "./data.mjs";

const S = "https://github.com/Azure-Samples/cosmos-db-nosql-query-samples/tree/main/scripts/";
const L = "https://learn.microsoft.com/azure/cosmos-db/nosql/query/";

export const corpus = [];
export const errorCorpus = [];

function E(name, query, expected, o = {}) {
  corpus.push({ name, query, expected, ordered: false, ...o });
}
function X(name, query, o = {}) {
  errorCorpus.push({ name, query, expected: [], ...o });
}
const ids = (s) => s.split(/\s+/).filter(Boolean);

// Composite indexes the multi-field ORDER BY queries below need (the indexed
// container gets them; Cosmos refuses such queries without one).
export const compositeIndexes = [
  [
    { path: "/name/last", order: "descending" },
    { path: "/name/first", order: "ascending" },
  ],
  [
    { path: "/g", order: "descending" },
    { path: "/n", order: "ascending" },
  ],
  [
    { path: "/pk", order: "ascending" },
    { path: "/id", order: "descending" },
  ],
];

// ===================================================================
// SELECT, projections, VALUE, DISTINCT, TOP (documentation examples)
// ===================================================================

E("select.docs_two_constants", `SELECT "Adventure", "Works"`, [{ $1: "Adventure", $2: "Works" }], { src: S + "select" });
E("select.docs_object", `SELECT { department: "Sales", team: "Field sales" }`, [{ $1: { department: "Sales", team: "Field sales" } }], { src: S + "select-json" });
E("select.docs_value_object", `SELECT VALUE { department: "Sales", team: "Field sales" }`, [{ department: "Sales", team: "Field sales" }], { src: S + "select-value-json" });
E("select.docs_value_string", `SELECT VALUE "Sales"`, ["Sales"], { src: S + "select-value" });
E(
  "select.docs_fields",
  `SELECT VALUE { name: e.identity.name, team: e.team, phone: e.contact[0] } FROM employees e WHERE e.team = "Field sales"`,
  [
    { name: "Parker McLean", team: "Field sales", phone: "206-555-0147" },
    { name: "Beibit Shayakhmet", team: "Field sales", phone: "206-555-0178" },
  ],
  { src: S + "select-fields" }
);
E(
  "select.docs_where",
  `SELECT VALUE { employeeName: e.name, currentTeam: e.team } FROM employees e WHERE e.team = "Hospitality"`,
  [
    { employeeName: "Jordan Mitchell", currentTeam: "Hospitality" },
    { employeeName: "Ashley Schroeder", currentTeam: "Hospitality" },
    { employeeName: "Tomas Richardson", currentTeam: "Hospitality" },
  ],
  { src: S + "where" }
);
E(
  "select.docs_where_field",
  `SELECT VALUE { employeeName: e.name, isPartTime: e.partTime } FROM employees e WHERE e.partTime AND e.team = "Facilities"`,
  [
    { employeeName: "Riley Ramirez", isPartTime: true },
    { employeeName: "Caleb Foster", isPartTime: true },
  ],
  { src: S + "where-field" }
);
E(
  "select.docs_where_scalar",
  `SELECT VALUE { employeeName: e.name, vacationDaysRemaining: e.vacationDays } FROM employees e WHERE e.vacationDays >= 7 AND e.team = "Software engineering"`,
  [
    { employeeName: "Ana Bowman", vacationDaysRemaining: 10 },
    { employeeName: "Madison Butler", vacationDaysRemaining: 7 },
  ],
  { src: S + "where-scalar" }
);
E(
  "select.docs_distinct_value",
  `SELECT DISTINCT VALUE p.category FROM products p WHERE p.pk = "products"`,
  ["poles", "small-bags", "short-fins", "heavy-coats", "socks", "camp-utensils", "activity-bracelet", "fashion-bracelet", "sport-helmets", "winter-coats", "modern-vests", "seasonal-coats", "hiking-bags"],
  { src: L + "keywords#distinct", note: "the keywords page's example over this data set" }
);
E(
  "select.docs_distinct_missing_is_empty_object",
  `SELECT DISTINCT p.category FROM products p WHERE p.pk = "products"`,
  [{}, ...["poles", "small-bags", "short-fins", "heavy-coats", "socks", "camp-utensils", "activity-bracelet", "fashion-bracelet", "sport-helmets", "winter-coats", "modern-vests", "seasonal-coats", "hiking-bags"].map((category) => ({ category }))],
  { src: L + "keywords#distinct", note: "items without category project to {} and count once" }
);
E("select.count_all", `SELECT VALUE COUNT(1) FROM c`, [102]);
E("select.count_one_partition", `SELECT VALUE COUNT(1) FROM c`, [16], { pk: "types" });
E("select.star_one", `SELECT * FROM c WHERE c.id = "t05"`, [{ id: "t05", pk: "types", kind: "t", i: 5, n: 5, g: "x", v: 1 }]);
E("select.star_one_partition", `SELECT * FROM c WHERE c.id = "m07"`, [{ id: "m07", pk: "misc", kind: "m", arr2d: [[1, 2], [3, 4]], "with.dot": 5, $dollar: 6 }], { pk: "misc" });
// SELECT * is the identity projection: the stored items themselves (system
// properties are stripped by the runner before comparing).
E("select.star_many", `SELECT * FROM c WHERE c.kind = "s"`, documents.filter((d) => d.kind === "s"), { src: L + "select" });
E("select.star_two_equalities", `SELECT * FROM c WHERE c.kind = "t" AND c.g = "x"`, documents.filter((d) => d.kind === "t" && d.g === "x"), { src: L + "select" });
E("select.star_partition_all", `SELECT * FROM c`, documents.filter((d) => d.pk === "misc"), { pk: "misc", src: L + "select" });
E("select.star_nested_equality", `SELECT * FROM c WHERE c.address.state = "WA"`, documents.filter((d) => d.address && d.address.state === "WA"));
E("select.star_number_equality", `SELECT * FROM c WHERE c.v = 1.5`, documents.filter((d) => d.id === "t06"));
E("select.star_wrong_partition", `SELECT * FROM c WHERE c.id = "m07"`, [], { pk: "types" });
E("select.star_filter_partition", `SELECT VALUE c.id FROM c WHERE c.kind = "t"`, [], { pk: "misc" });
E("select.ids_kind", `SELECT VALUE c.id FROM c WHERE c.kind = "t"`, ids("t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16"));
E("select.ids_kind_partition", `SELECT VALUE c.id FROM c WHERE c.kind = "m"`, ids("m01 m02 m03 m04 m05 m06 m07 m08"), { pk: "misc" });
E("select.projection_omits_undefined", `SELECT c.id, c.v FROM c WHERE c.kind = "t" AND c.i <= 3`, [{ id: "t01" }, { id: "t02", v: null }, { id: "t03", v: false }], {
  src: L + "select",
  note: "a property whose value is undefined is left out of the projected object",
});
E("select.value_drops_undefined", `SELECT VALUE c.v FROM c WHERE c.kind = "t" AND c.i <= 4`, [null, false, true], { note: "SELECT VALUE of undefined yields no row" });
E("select.alias", `SELECT c.id AS ident, c.n * 2 AS dbl FROM c WHERE c.id = "t03"`, [{ ident: "t03", dbl: 6 }]);
E("select.alias_without_as", `SELECT c.id ident FROM c WHERE c.id = "t03"`, [{ ident: "t03" }], { src: L + "select" });
E("select.nested_path", `SELECT VALUE c.nested.deep.deeper.v FROM c WHERE c.id = "m02"`, [42]);
E("select.nested_path_name", `SELECT c.address.city FROM c WHERE c.id = "AndersenFamily"`, [{ city: "Seattle" }], { note: "a path projects under its last segment's name" });
E("select.nested_two", `SELECT f.address.city, f.address.state FROM Families f WHERE f.id = "WakefieldFamily"`, [{ city: "NY", state: "NY" }]);
E("select.whole_subobject", `SELECT f.address FROM Families f WHERE f.id = "AndersenFamily"`, [{ address: { state: "WA", county: "King", city: "Seattle" } }]);
E("select.bracket_space", `SELECT VALUE c["a b"] FROM c WHERE c.kind = "m"`, [1, "two", null], { src: L + "from", note: "c[\"a b\"]: m01, m02, m05 define it" });
E("select.bracket_dot", `SELECT VALUE c["with.dot"] FROM c WHERE c.id = "m07"`, [5]);
E("select.bracket_dollar", `SELECT VALUE c["$dollar"] FROM c WHERE c.id = "m07"`, [6]);
E("select.bracket_unicode_name", `SELECT VALUE c["ключ"] FROM c WHERE c.id = "m08"`, ["значение"]);
E("select.bracket_chain", `SELECT VALUE c["nested"]["deep"].deeper["v"] FROM c WHERE c.id = "m02"`, [42]);
E("select.bracket_project_name", `SELECT c["a b"] FROM c WHERE c.id = "m01"`, [{ "a b": 1 }], { unsure: true, note: "assumed: a bracketed property projects under its own name" });
E("select.array_index", `SELECT VALUE c.arr[1][0] FROM c WHERE c.id = "m01"`, [2]);
E("select.array_index_object", `SELECT VALUE c.arr[2].x FROM c WHERE c.id = "m01"`, [1]);
E("select.array_index_out_of_range", `SELECT VALUE c.arr[5] FROM c WHERE c.id = "m01"`, []);
E("select.array_index_on_object", `SELECT VALUE c.nested[0] FROM c WHERE c.id = "m02"`, []);
E("select.property_of_scalar", `SELECT VALUE c.id.length FROM c WHERE c.id = "m02"`, [], { note: "property of a string is undefined" });
E("select.object_construction", `SELECT VALUE { id: c.id, twice: c.n * 2, missing: c.nope } FROM c WHERE c.id = "t02"`, [{ id: "t02", twice: 4 }], {
  note: "an undefined member is left out of a constructed object",
});
E("select.object_construction_nested", `SELECT VALUE { a: { b: [c.i, { d: c.g }] } } FROM c WHERE c.id = "t09"`, [{ a: { b: [9, { d: "y" }] } }]);
E("select.object_construction_quoted_names", `SELECT VALUE { "a b": 1, "ü": 2 }`, [{ "a b": 1, ü: 2 }], { src: L + "constants" });
E("select.array_construction", `SELECT VALUE [c.i, c.v, c.g] FROM c WHERE c.id = "t02"`, [[2, null, "x"]]);
E("select.array_construction_undefined", `SELECT VALUE [c.i, c.v, c.g] FROM c WHERE c.id = "t01"`, [[1, "x"]], {
  unsure: true,
  src: L + "constants",
  note: "arrays hold no undefined element (constants page); assumed an undefined element is left out",
});
E("select.constant_no_from", `SELECT 1 AS a, "x" AS b`, [{ a: 1, b: "x" }], { src: L + "subquery#simple-expression-scalar-subqueries" });
E("select.generated_name", `SELECT c.id, c.n + 1 FROM c WHERE c.id = "t01"`, [{ id: "t01", $1: 2 }], { src: S + "select", note: "an expression without alias is named $1, $2, ..." });
E("select.generated_names_two", `SELECT c.n + 1, c.n - 1 FROM c WHERE c.id = "t05"`, [{ $1: 6, $2: 4 }], { src: S + "select" });
E("select.from_root", `SELECT VALUE r.id FROM ROOT r WHERE r.id = "t01"`, ["t01"], { src: L + "from" });
E("select.from_as", `SELECT VALUE f.id FROM Families AS f WHERE f.id = "WakefieldFamily"`, ["WakefieldFamily"], { src: L + "from" });
E("select.from_container_name", `SELECT VALUE Families.id FROM Families WHERE Families.lastName = "Andersen"`, ["AndersenFamily"], { src: L + "from" });
E("select.distinct_value_g", `SELECT DISTINCT VALUE c.g FROM c WHERE c.kind = "t"`, ["x", "y"]);
E(
  "select.distinct_value_skips_undefined",
  `SELECT DISTINCT VALUE e.team FROM employees e WHERE e.pk = "employees"`,
  ["Cloud software engineering", "Leadership team", "Human resources", "Hospitality", "Facilities", "Software engineering", "Field sales", "Tech support"]
);
E("select.distinct_numbers", `SELECT DISTINCT VALUE c.v FROM c WHERE c.kind = "t" AND IS_NUMBER(c.v)`, [1, 1.5, -2, 0, 1e20, 10]);
E("select.distinct_objects", `SELECT DISTINCT c.g, c.kind FROM c WHERE c.kind = "t"`, [{ g: "x", kind: "t" }, { g: "y", kind: "t" }]);
E("select.distinct_arrays", `SELECT DISTINCT VALUE [c.g] FROM c WHERE c.kind = "t"`, [["x"], ["y"]]);
E("select.distinct_names", `SELECT DISTINCT VALUE e.name FROM e WHERE e.team = "Hospitality" OR e.team = "Cloud software engineering"`, [
  "Jordan Mitchell",
  "Mikaela Lee",
  "Graham Barnes",
  "Hayden Cook",
  "Morgan Connors",
  "Devon Torres",
  "Sam Centrell",
  "Ashley Schroeder",
  "Tomas Richardson",
], { note: "Jordan Mitchell is in both teams: once" });
E("select.top_ordered", `SELECT TOP 3 c.id FROM c WHERE c.kind = "t" ORDER BY c.i`, [{ id: "t01" }, { id: "t02" }, { id: "t03" }], { ordered: true, src: L + "keywords#top" });
E("select.top_parameter", `SELECT TOP @n VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i DESC`, ["t16", "t15"], {
  ordered: true,
  parameters: [{ name: "@n", value: 2 }],
  src: L + "keywords#top",
});
E("select.top_zero", `SELECT TOP 0 VALUE c.id FROM c WHERE c.kind = "t"`, []);
E("select.top_more_than_rows", `SELECT TOP 100 VALUE c.id FROM c WHERE c.kind = "m" ORDER BY c.id`, ids("m01 m02 m03 m04 m05 m06 m07 m08"), { ordered: true });
E("select.top_unordered_count", `SELECT TOP 5 VALUE c.id FROM c WHERE c.kind = "t"`, [], {
  check: (rows) => {
    if (rows.length !== 5) return `want 5 rows, got ${rows.length}`;
    if (new Set(rows).size !== 5) return "duplicate rows";
    if (!rows.every((r) => /^t(0[1-9]|1[0-6])$/.test(r))) return "a row that does not match the filter";
    return null;
  },
  note: "TOP without ORDER BY: any 5 matching rows",
});
E("select.top_distinct", `SELECT DISTINCT TOP 1 VALUE c.g FROM c WHERE c.kind = "t" ORDER BY c.g DESC`, ["y"], { ordered: true });
E("select.value_star_subroot", `SELECT * FROM Families.address a WHERE a.state = "WA"`, [
  { state: "WA", county: "King", city: "Seattle" },
  { state: "WA", county: "King", city: "Redmond" },
], { src: L + "from" });
E(
  "select.docs_from",
  `SELECT VALUE { name: e.name, location: e.workLocation } FROM employees e WHERE e.team = "Tech support"`,
  [
    { name: "Tijana Stanković", location: { office: "Redmond, WA" } },
    { name: "Jean Nadeau", location: { type: "Remote" } },
  ],
  { src: S + "from" }
);
E(
  "select.docs_from_field",
  `SELECT * FROM employees.employment e WHERE e.team = "Retail support"`,
  [
    { hireDateTime: "2023-01-01T06:30:00.000Z", weeklyHours: 40, team: "Retail support" },
    { hireDateTime: "2023-01-01T09:30:00.000Z", team: "Retail support" },
    { hireDateTime: "2023-01-01T15:30:00.000Z", weeklyHours: 32, team: "Retail support" },
  ],
  { src: S + "from-field" }
);
E("select.undefined_projection", `SELECT undefined`, [{}], { src: L + "subquery#exists-expression" });
E("select.value_undefined", `SELECT VALUE undefined`, [], { src: L + "subquery#exists-expression" });
E("select.value_null", `SELECT VALUE null`, [null]);
E("select.hex_literal", `SELECT VALUE 0x1F`, [31], { src: L + "constants" });
E("select.exponent_literal", `SELECT VALUE [1e3, 2.5E-1, -0.0e0, 1.0]`, [[1000, 0.25, -0, 1]], { src: L + "constants" });
E("select.string_escapes", `SELECT VALUE "q\\"s\\'b\\\\/\\/n\\nt\\tu\\u00e9"`, ["q\"s'b\\//n\nt\tu\u00e9"], { src: L + "constants", note: "every escape the constants page lists" });
E("select.single_quoted", `SELECT VALUE 'it\\'s "fine"'`, ["it's \"fine\""], { src: L + "constants" });
E("select.escapes_bfr", `SELECT VALUE "\\b\\f\\r"`, ["\b\f\r"], { src: L + "constants" });
E("select.keywords_case_insensitive", `select value c.id from c where c.id = "t01"`, ["t01"]);

// ===================================================================
// FROM x IN, JOIN
// ===================================================================

E("from.in_children", `SELECT VALUE ch.grade FROM ch IN Families.children`, [5, 1, 8], { src: L + "from" });
E("from.in_ignores_non_arrays", `SELECT VALUE i.name FROM i IN c.items`, ["a", "b", "c"], { src: L + "from", note: "m06.items is a string: ignored; m05 is empty" });
E("from.in_nested_arrays", `SELECT VALUE x FROM x IN c.arr2d`, [[1, 2], [3, 4]]);
E("from.in_then_join", `SELECT VALUE y FROM c JOIN x IN c.arr2d JOIN y IN x`, [1, 2, 3, 4]);
E("from.in_with_filter", `SELECT VALUE i.qty FROM i IN c.items WHERE i.qty > 1`, [5, 10]);
E("from.in_star", `SELECT * FROM i IN c.items WHERE i.color = "blue"`, [{ name: "b", qty: 5, color: "blue" }]);
E("from.in_count", `SELECT VALUE COUNT(1) FROM t IN c.tags`, [13], { note: "Teapo 3 + Maresse 2 + Vareno 3 + Radimer 3 + Gremon Fins 2" });

E(
  "join.docs_single_item",
  `SELECT p.id, p.sku, t.slug FROM products p JOIN t IN p.tags WHERE p.id = "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb"`,
  [
    { id: "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb", sku: "teapo-surfboard-72109", slug: "tail-shape-swallow" },
    { id: "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb", sku: "teapo-surfboard-72109", slug: "length-inches-82" },
    { id: "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb", sku: "teapo-surfboard-72109", slug: "color-group-purple" },
  ],
  { src: L + "join" }
);
E(
  "join.docs_alias",
  `SELECT p.sku, t.name AS tag FROM products p JOIN t IN p.tags WHERE p.id = "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb"`,
  [
    { sku: "teapo-surfboard-72109", tag: "Tail Shape: Swallow" },
    { sku: "teapo-surfboard-72109", tag: "Length: 82 inches" },
    { sku: "teapo-surfboard-72109", tag: "Color Group: Purple" },
  ],
  { src: L + "join" }
);
E(
  "join.docs_startswith",
  `SELECT p.sku, t.name AS tag FROM products p JOIN t IN p.tags WHERE STARTSWITH(t.slug, "color-group-")`,
  [
    { sku: "teapo-surfboard-72109", tag: "Color Group: Purple" },
    { sku: "vareno-sleeping-bag-65508", tag: "Color Group: Yellow" },
  ],
  { src: L + "join", note: "over every product: tags without slug give undefined and drop" }
);
E(
  "join.docs_multiple_items",
  `SELECT p.sku, t.name AS tag FROM products p JOIN t IN p.tags WHERE p.categoryName = "Sleeping Bags"`,
  [
    { sku: "maresse-sleeping-bag-65503", tag: "Bag Shape: Mummy" },
    { sku: "maresse-sleeping-bag-65503", tag: "Bag Insulation: Down Fill" },
    { sku: "vareno-sleeping-bag-65508", tag: "Bag Insulation: Synthetic Fill" },
    { sku: "vareno-sleeping-bag-65508", tag: "Color Group: Yellow" },
    { sku: "vareno-sleeping-bag-65508", tag: "Bag Shape: Mummy" },
  ],
  { src: L + "join" }
);
E(
  "join.docs_filter_mummy",
  `SELECT p.sku, t.name AS tag FROM products p JOIN t IN p.tags WHERE p.categoryName = "Sleeping Bags" AND t.slug = "bag-shape-mummy"`,
  [
    { sku: "maresse-sleeping-bag-65503", tag: "Bag Shape: Mummy" },
    { sku: "vareno-sleeping-bag-65508", tag: "Bag Shape: Mummy" },
  ],
  { src: L + "join" }
);
E(
  "join.docs_filter_synthetic",
  `SELECT p.sku, t.name AS tag FROM products p JOIN t IN p.tags WHERE p.categoryName = "Sleeping Bags" AND t.slug = "bag-insulation-synthetic-fill"`,
  [{ sku: "vareno-sleeping-bag-65508", tag: "Bag Insulation: Synthetic Fill" }],
  { src: L + "join" }
);
E("join.families_pets", `SELECT f.id FROM Families f JOIN c IN f.children JOIN p IN c.pets`, [{ id: "AndersenFamily" }, { id: "WakefieldFamily" }, { id: "WakefieldFamily" }], {
  src: "https://learn.microsoft.com/azure/cosmos-db/nosql/query/join (Families example of the earlier getting-started pages)",
});
E(
  "join.families_pet_names",
  `SELECT f.id AS familyName, c.givenName AS childGivenName, c.firstName AS childFirstName, p.givenName AS petName FROM Families f JOIN c IN f.children JOIN p IN c.pets`,
  [
    { familyName: "AndersenFamily", childFirstName: "Henriette Thaulow", petName: "Fluffy" },
    { familyName: "WakefieldFamily", childGivenName: "Jesse", petName: "Goofy" },
    { familyName: "WakefieldFamily", childGivenName: "Jesse", petName: "Shadow" },
  ],
  { src: "Families example (JOIN) of the Cosmos DB SQL query getting-started pages" }
);
E("join.count_children", `SELECT VALUE COUNT(1) FROM f JOIN c IN f.children`, [3]);
E("join.missing_array_drops_item", `SELECT VALUE f.id FROM f JOIN c IN f.children WHERE f.pk = "families"`, ["AndersenFamily", "WakefieldFamily", "WakefieldFamily"], {
  note: "NoKidsFamily has no children: the cross product is empty",
});
E("join.cross_product", `SELECT VALUE [a, b] FROM c JOIN a IN c.inStockColors JOIN b IN c.inStockColors WHERE c.id = "5688704115"`, [
  ["Rhino", "Rhino"],
  ["Rhino", "Finch"],
  ["Finch", "Rhino"],
  ["Finch", "Finch"],
]);
E("join.filter_element", `SELECT c.id, i.name FROM c JOIN i IN c.items WHERE i.color = "red"`, [{ id: "m03", name: "a" }, { id: "m04", name: "c" }]);
E("join.element_value", `SELECT VALUE t FROM p JOIN t IN p.tags WHERE p.id = "68719519522"`, ["Science Blue", "Turbo"]);
E(
  "join.docs_accessories",
  `SELECT p.name, a.name AS accessoryName FROM products p JOIN a IN p.accessories WHERE a.type = "chains" AND a.quantityOnHand >= 10`,
  [{ name: "Unobtani road bike", accessoryName: "9-speed chain" }],
  { src: L + "subquery#exists-expression" }
);
E(
  "join.docs_subquery_aggregate",
  `SELECT p.name, inventoryData.inventoryAverage FROM products p JOIN (SELECT COUNT(1) AS inventoryCount, AVG(i.quantity) as inventoryAverage FROM i IN p.inventory WHERE i.quantity > 10) AS inventoryData WHERE inventoryData.inventoryCount >= 1`,
  [{ name: "Snow coat", inventoryAverage: 35 }],
  { src: L + "subquery#aggregate-scalar-subqueries" }
);
E(
  "join.subquery_filter",
  `SELECT VALUE p.id FROM p JOIN (SELECT VALUE t FROM t IN p.tags WHERE t.slug = "bag-shape-mummy")`,
  ["ffffffff-5555-6666-7777-aaaaaaaaaaaa", "c2c2c2c2-dddd-eeee-ffff-a3a3a3a3a3a3"],
  { src: L + "subquery#optimize-self-join-expressions" }
);
E(
  "join.subquery_evaluate_once",
  `SELECT VALUE { subtotal: p.price, total: totalPrice } FROM products p JOIN (SELECT VALUE p.price * 1.25) totalPrice WHERE totalPrice < 22.25`,
  [{ subtotal: 5.11, total: 6.3875 }],
  { approx: true, src: L + "subquery#evaluate-once-and-reference-many-times", note: "the page's UDF replaced by its body" }
);
E(
  "join.subquery_reference_data",
  `SELECT c.id, m.name FROM c JOIN m IN (SELECT VALUE [{k: "x", name: "ex"}, {k: "y", name: "why"}]) WHERE c.g = m.k AND c.i IN (1, 16)`,
  [{ id: "t01", name: "ex" }, { id: "t16", name: "why" }],
  { src: L + "subquery#mimic-join-with-external-reference-data" }
);
E(
  "join.docs_array_in_from",
  `SELECT p.name, n.t.name AS nonBikeTagName FROM products p JOIN n IN (SELECT VALUE ARRAY(SELECT t FROM t in p.tags WHERE t.name NOT LIKE "%bike%")) WHERE p.id = "radimer-mountain-bike"`,
  [
    { name: "Radimer mountain bike", nonBikeTagName: "road" },
    { name: "Radimer mountain bike", nonBikeTagName: "competitive" },
  ],
  { src: L + "subquery#array-expression" }
);
E("join.three_level", `SELECT VALUE p.givenName FROM f JOIN ch IN f.children JOIN p IN ch.pets WHERE ch.grade < 5`, ["Goofy", "Shadow"]);
E("join.with_order_by", `SELECT VALUE ch.grade FROM f JOIN ch IN f.children ORDER BY f.id DESC`, [], {
  check: (rows) => (JSON.stringify([...rows.slice(0, 2)].sort()) === "[1,8]" && rows[2] === 5 && rows.length === 3 ? null : "want Wakefield's grades (1, 8 in any order) then Andersen's 5"),
});

// ===================================================================
// WHERE: comparison across types (kind "t": v of every type)
// t01 missing, t02 null, t03 false, t04 true, t05 1, t06 1.5, t07 -2, t08 0,
// t09 1e20, t10 "1", t11 "a", t12 "B", t13 "", t14 [1,2], t15 {a:1}, t16 10
// ===================================================================

const EQ = L + "equality-comparison-operators";
const W = (name, cond, expectedIds, o = {}) => E(name, `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND (${cond})`, ids(expectedIds), { src: EQ, ...o });
W("where.eq_number", "c.v = 1", "t05");
W("where.eq_number_float_literal", "c.v = 1.0", "t05", { note: "1 and 1.0 are the same double" });
W("where.eq_string_not_number", `c.v = "1"`, "t10");
W("where.eq_null", "c.v = null", "t02");
W("where.eq_false", "c.v = false", "t03");
W("where.eq_true", "c.v = true", "t04");
W("where.bare_boolean", "c.v", "t04", { src: S + "where-field", note: "a bare expression filters when it is exactly true" });
W("where.eq_array", "c.v = [1, 2]", "t14");
W("where.eq_array_order_matters", "c.v = [2, 1]", "");
W("where.eq_object", "c.v = {a: 1}", "t15");
W("where.eq_object_extra_member", "c.v = {a: 1, b: 2}", "");
W("where.eq_object_member", "c.v.a = 1", "t15");
W("where.eq_string_empty", `c.v = ""`, "t13");
W("where.eq_large", "c.v = 1e20", "t09");
W("where.eq_large_spelled", "c.v = 100000000000000000000", "t09");
W("where.eq_negative", "c.v = -2", "t07");
W("where.eq_undefined_literal", "c.v = undefined", "");
W("where.neq_number_only_numbers", "c.v != 1", "t06 t07 t08 t09 t16", { note: "!= across types is undefined: only numbers other than 1" });
W("where.neq_ansi", "c.v <> 1", "t06 t07 t08 t09 t16");
W("where.neq_string", `c.v != "a"`, "t10 t12 t13");
W("where.gt_number", "c.v > 1", "t06 t09 t16");
W("where.ge_number", "c.v >= 1", "t05 t06 t09 t16");
W("where.lt_zero", "c.v < 0", "t07");
W("where.le_zero", "c.v <= 0", "t07 t08");
W("where.gt_string", `c.v > "A"`, "t11 t12", { note: "ordinal: \"1\" < \"A\" < \"B\" < \"a\"" });
W("where.lt_string", `c.v < "1"`, "t13");
W("where.gt_false", "c.v > false", "t04", { note: "false < true" });
W("where.ge_null", "c.v >= null", "t02", { unsure: true, note: "assumed null >= null is true (null is comparable with null)" });
W("where.lt_array_undefined", "c.v < [2]", "", { note: "comparing arrays is undefined" });
W("where.gt_object_undefined", "c.v > {}", "");
W("where.is_defined", "NOT IS_DEFINED(c.v)", "t01");
W("where.not_eq_three_valued", "NOT (c.v = 1)", "t06 t07 t08 t09 t16", { src: L + "logical-operators", note: "NOT undefined is undefined" });
W("where.or_undefined_true", "c.v = 1 OR c.i = 2", "t02 t05", { src: L + "logical-operators", note: "undefined OR true = true" });
W("where.not_and_false", "NOT (c.v > 0 AND c.i > 100)", "t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16", {
  src: L + "logical-operators",
  note: "undefined AND false = false, so NOT(...) is true everywhere",
});
W("where.not_or_false", "NOT (c.v > 0 OR c.i > 100)", "t07 t08", { src: L + "logical-operators", note: "undefined OR false = undefined" });
W("where.and_precedence", "c.i = 1 OR c.i = 2 AND c.v = false", "t01", { src: L + "logical-operators#operator-precedence", note: "AND binds tighter than OR" });
W("where.not_precedence", "NOT c.i = 1 AND c.i < 3", "t02", { src: L + "logical-operators#operator-precedence", note: "NOT binds tighter than AND" });
W("where.arith_plus", "c.v + 1 = 2", "t05", { note: "\"1\" + 1 is undefined, not \"11\" or 2" });
W("where.arith_times", "c.v * 2 = 3", "t06");
W("where.arith_divide", "c.v / 2 = -1", "t07");
W("where.arith_modulo", "c.n % 5 = 0", "t05 t10 t15");
W("where.arith_negate", "-c.v = 2", "t07");
W("where.arith_non_numbers_undefined", "c.v + 1 > 0", "t05 t06 t08 t09 t16");
W("where.arith_precedence", "c.n + 2 * 3 = 7", "t01");
W("where.arith_parentheses", "(c.n + 2) * 3 = 9", "t01");
W("where.string_concat_operator", `c.v || "x" = "ax"`, "t11", { unsure: true, note: "|| concatenates strings; assumed it binds tighter than =" });
W("where.in_mixed", `c.v IN (1, "1", null, true)`, "t02 t04 t05 t10", { src: L + "keywords#in" });
W("where.in_array_object", "c.v IN ([1, 2], {a: 1})", "t14 t15", { src: L + "keywords#in" });
W("where.in_single", "c.i IN (3)", "t03");
W("where.not_in_numbers", "c.v NOT IN (1, 1.5) AND IS_NUMBER(c.v)", "t07 t08 t09 t16", { src: L + "keywords#in" });
W("where.not_in_mixed", `c.v NOT IN (1, "a")`, "t02 t03 t04 t06 t07 t08 t09 t10 t12 t13 t14 t15 t16", {
  src: L + "keywords#in",
  note: "IN is list membership by equality across all types (the .NET SDK's reference evaluator: undefined needle -> undefined, else contains, negated for NOT IN); only a missing v is undefined",
});
W("where.between_numbers", "c.v BETWEEN 0 AND 1.5", "t05 t06 t08", { src: L + "keywords#between" });
W("where.between_inclusive", "c.i BETWEEN 3 AND 5", "t03 t04 t05", { src: L + "keywords#between" });
W("where.between_strings", `c.v BETWEEN "A" AND "Z"`, "t12", { src: L + "keywords#between" });
W("where.between_mixed_bounds", `c.v BETWEEN 0 AND "z"`, "", { src: L + "keywords#between", note: "a comparison across types is undefined: nothing" });
W("where.not_between", "c.v NOT BETWEEN 0 AND 1.5 AND IS_NUMBER(c.v)", "t07 t09 t16");
W("where.between_reversed_bounds", "c.i BETWEEN 5 AND 3", "");
W("where.ternary", `IS_NUMBER(c.v) AND (c.v > 0 ? "pos" : "nonpos") = "nonpos"`, "t07 t08", { src: L + "ternary-coalesce-operators" });
W("where.ternary_undefined_condition", `(c.v > 0 ? "pos" : "nonpos") = "nonpos"`, "t01 t02 t03 t04 t07 t08 t10 t11 t12 t13 t14 t15", {
  src: L + "ternary-coalesce-operators",
  note: "expr_false is evaluated when bool_expr is not true (the page's argument table; the .NET SDK's reference evaluator takes the second branch unless the condition is the boolean true): an undefined condition gives 'nonpos'",
});
W("where.coalesce", `(c.v ?? "none") = "none"`, "t01", { src: L + "ternary-coalesce-operators", note: "?? replaces only undefined; null stays" });
W("where.coalesce_chain", "(c.missing ?? c.v ?? 5) = 5", "t01");
W("where.bracket_property", `c["v"] = 1.5`, "t06");
W("where.unary_plus", "+c.v = 10", "t16", { unsure: true, note: "unary + on a number is the number" });
W("where.is_number_and_gt", "IS_NUMBER(c.v) AND c.v > 5", "t09 t16");
W("where.double_not", "NOT NOT (c.v = true)", "t04");
W("where.true_literal", "true", "t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16");
W("where.false_literal", "false", "");
W("where.non_boolean_where", "c.i", "", { note: "a number is not true: no row" });
W("where.ge_and_le", "c.n >= 15 AND c.n <= 16", "t15 t16");
W("where.or_chain", "c.i = 1 OR c.i = 8 OR c.i = 16", "t01 t08 t16");

const WS = (name, cond, expectedIds, o = {}) => E(name, `SELECT VALUE c.id FROM c WHERE c.kind = "s" AND (${cond})`, ids(expectedIds), o);
WS("where.str_eq_accent", `c.s = "café"`, "s01");
WS("where.str_eq_unicode_escape", `c.s = "caf\\u00e9"`, "s01", { src: L + "constants" });
WS("where.str_eq_surrogate_escape", `c.s = "emoji \\ud83d\\ude00 here"`, "s04", { src: L + "constants", unsure: true, note: "assumed a \\u surrogate pair denotes the astral character" });
WS("where.str_eq_astral", `c.s = "emoji 😀 here"`, "s04");
WS("where.str_eq_cjk", `c.s = "日本語テキスト"`, "s03");
WS("where.str_eq_quote", `c.s = "quote \\" and 'single'"`, "s05", { src: L + "constants" });
WS("where.str_eq_single_quoted", `c.s = 'quote " and \\'single\\''`, "s05", { src: L + "constants" });
WS("where.str_eq_backslash", `c.s = "back\\\\slash"`, "s06", { src: L + "constants" });
WS("where.str_eq_control", `c.s = "tab\\there\\nnewline"`, "s07", { src: L + "constants" });
WS("where.str_eq_empty", `c.s = ""`, "s08");
WS("where.str_case_sensitive", `c.s = "CAFE"`, "");
WS("where.str_ordinal_gt", `c.s > "z"`, "s03 s12", { note: "ordinal: U+00DC and U+65E5 sort after z" });
WS("where.str_ordinal_lt", `c.s < "A"`, "s08 s09 s10", { note: "\"\", \"  padded  \", \"100%\"" });
WS("where.like_prefix", `c.s LIKE "caf%"`, "s01", { src: L + "keywords#like" });
WS("where.like_suffix", `c.s LIKE "%here"`, "s04", { src: L + "keywords#like" });
WS("where.like_contains", `c.s LIKE "%a%"`, "s01 s05 s06 s07 s09", { src: L + "keywords#like" });
WS("where.like_underscore_accent", `c.s LIKE "caf_"`, "s01", { src: L + "keywords#like", note: "_ is one character; é is one character" });
WS("where.like_underscore_astral", `c.s LIKE "emoji _ here"`, "s04", { src: L + "keywords#like", unsure: true, note: "assumed _ matches one code point, the astral emoji included" });
WS("where.like_escape_percent", `c.s LIKE "%0^%" ESCAPE "^"`, "s10", { src: L + "keywords#like" });
WS("where.like_escape_underscore", `c.s LIKE "%!_%" ESCAPE "!"`, "s11", { src: L + "keywords#like" });
WS("where.like_underscore_wildcard", `c.s LIKE "%r_s%"`, "s11", { note: "under_score: 'r_s' with _ matching '_'" });
WS("where.like_bracket_literal", `c.s LIKE "100[%]"`, "s10", { src: L + "keywords#like" });
WS("where.like_bracket_underscore", `c.s LIKE "under[_]score"`, "s11", { src: L + "keywords#like" });
WS("where.like_bracket_set", `c.s LIKE "[bc]a%"`, "s01 s06", { src: L + "keywords#like" });
WS("where.like_bracket_range", `c.s LIKE "[a-c]%"`, "s01 s06", { src: L + "keywords#like" });
WS("where.like_bracket_negated", `c.s LIKE "[^c]A%"`, "s02", { src: L + "keywords#like" });
WS("where.not_like", `c.s NOT LIKE "%e%"`, "s01 s02 s03 s06 s08 s10 s12", { src: L + "keywords#like" });
WS("where.like_empty_pattern", `c.s LIKE ""`, "s08");
WS("where.like_only_percent", `c.s LIKE "%"`, "s01 s02 s03 s04 s05 s06 s07 s08 s09 s10 s11 s12");
WS("where.like_case_sensitive", `c.s LIKE "CAF%"`, "s02");
WS("where.like_quote", `c.s LIKE '%\\'single\\'%'`, "s05");
WS("where.like_newline_percent", `c.s LIKE "tab%newline"`, "s07", { note: "% also matches tab and newline" });
WS("where.like_cjk", `c.s LIKE "日本%"`, "s03");
W("where.like_non_string", `c.v LIKE "1"`, "t10", { note: "LIKE on a number is undefined" });
E(
  "where.docs_like_name",
  `SELECT VALUE p.name FROM products p WHERE p.name LIKE "%coat%"`,
  ["Snow coat", "Tecozow coat", "Bladnick coat", "Malsca coat"],
  { src: L + "keywords#like" }
);
E("where.docs_like_suffix", `SELECT VALUE p.name FROM products p WHERE p.name LIKE "%pack"`, ["Astoney pack", "Icento pack", "Cosmoxy pack", "Heliont pack"], { src: L + "keywords#like" });
E("where.docs_like_prefix", `SELECT VALUE p.name FROM products p WHERE p.name LIKE "Ic%"`, ["Icento pack", "Icenty bracelet"], { src: L + "keywords#like" });
E("where.docs_not_like", `SELECT VALUE p.name FROM products p WHERE p.category = "small-bags" AND p.name NOT LIKE "%bag%"`, ["Astoney pack", "Icento pack"], { src: L + "keywords#like" });
E("where.docs_in", `SELECT VALUE p.id FROM products p WHERE p.category IN ("socks", "short-fins")`, ["5922901576", "1859046259", "3656853690", "68719519522"], { src: L + "keywords#in" });
E("where.docs_between", `SELECT VALUE p.price FROM products p WHERE p.price BETWEEN 17.25 AND 25.50`, [24.5, 24.5, 24.5, 20.28], { src: L + "keywords#between" });
E(
  "where.docs_between_in_select",
  `SELECT (p.price BETWEEN 0 AND 10) AS booleanLessThanTen, p.price FROM products p WHERE p.category = "small-bags"`,
  [
    { booleanLessThanTen: false, price: 20.28 },
    { booleanLessThanTen: true, price: 5.11 },
    { booleanLessThanTen: false, price: 62.21 },
  ],
  { src: L + "keywords#between" }
);
E("where.docs_number_vs_string", `SELECT * FROM products p WHERE 0 = "true"`, [], { src: EQ });
E("where.misc_iso_dates_are_strings", `SELECT VALUE c.id FROM c WHERE c.kind = "m" AND c.dt > "2021-01-01"`, ids("m01 m02 m04"), {
  note: "string comparison: \"not a date\" > \"2021-01-01\" too",
});
E("where.misc_nested_array_path", `SELECT VALUE c.id FROM c WHERE c.arr[1][1] = 3`, ["m01"]);
E("where.misc_items_path", `SELECT VALUE c.id FROM c WHERE c.items[0].qty >= 1`, ["m03", "m04"]);
E("where.misc_space_name", `SELECT VALUE c.id FROM c WHERE c["a b"] = null`, ["m05"]);
E("where.misc_big_integer", `SELECT VALUE c.id FROM c WHERE c.big = 9007199254740991`, ["m01"]);
E("where.misc_negative_fraction", `SELECT VALUE c.id FROM c WHERE c.neg < -0.1`, ["m01"]);
E("where.misc_tiny_negative", `SELECT VALUE c.id FROM c WHERE c.neg > -0.001 AND c.neg < 0`, ["m02"]);
E("where.families_nested", `SELECT VALUE f.id FROM Families f WHERE f.address.state = "WA" AND f.isRegistered`, ["AndersenFamily", "NoKidsFamily"]);
E("where.families_array_index", `SELECT VALUE f.id FROM f WHERE f.children[0].grade = 1`, ["WakefieldFamily"]);
E("where.pk_filter_cross", `SELECT VALUE c.id FROM c WHERE c.pk = "families"`, ["AndersenFamily", "WakefieldFamily", "NoKidsFamily"]);
E("where.pk_in", `SELECT VALUE COUNT(1) FROM c WHERE c.pk IN ("families", "misc")`, [11], { src: L + "keywords#in" });
E("where.id_in_partition", `SELECT VALUE c.id FROM c WHERE c.id IN ("s01", "t01", "m01")`, ["t01"], { pk: "types" });

// ===================================================================
// ORDER BY
// undefined < null < false < true < numbers < strings < arrays < objects
// ===================================================================

const OB = L + "order-by";
const MIXED_ORDER = "https://github.com/Azure/azure-cosmos-dotnet-v3/pull/853 (type order; the JS SDK's orderByComparator: undefined, boolean, number, string)";
E("orderby.docs_asc", `SELECT VALUE { firstName: e.name.first, lastName: e.name.last } FROM employees e WHERE e.team = "Human resources" ORDER BY e.name.last`, [
  { firstName: "Casey", lastName: "Jensen" },
  { firstName: "Kayla", lastName: "Lewis" },
  { firstName: "Amari", lastName: "Rivera" },
], { ordered: true, src: S + "order-by" });
E("orderby.docs_desc", `SELECT VALUE { firstName: e.name.first, lastName: e.name.last } FROM employees e WHERE e.team = "Human resources" ORDER BY e.name.last DESC`, [
  { firstName: "Amari", lastName: "Rivera" },
  { firstName: "Kayla", lastName: "Lewis" },
  { firstName: "Casey", lastName: "Jensen" },
], { ordered: true, src: S + "order-by-desc" });
E("orderby.docs_multiple", `SELECT VALUE { firstName: e.name.first, lastName: e.name.last } FROM employees e WHERE e.team = "Human resources" ORDER BY e.name.last DESC, e.name.first ASC`, [
  { firstName: "Amari", lastName: "Rivera" },
  { firstName: "Kayla", lastName: "Lewis" },
  { firstName: "Casey", lastName: "Jensen" },
], { ordered: true, src: S + "order-by-multiple (novalidate; needs the composite index)" });
E("orderby.number_asc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i`, ids("t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16"), { ordered: true, src: OB });
E("orderby.number_asc_keyword", `SELECT VALUE c.id FROM c WHERE c.kind = "m" ORDER BY c.id ASC`, ids("m01 m02 m03 m04 m05 m06 m07 m08"), { ordered: true, src: OB });
E("orderby.number_desc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.n DESC`, ids("t16 t15 t14 t13 t12 t11 t10 t09 t08 t07 t06 t05 t04 t03 t02 t01"), { ordered: true, src: OB });
E("orderby.number_desc_partition", `SELECT VALUE c.i FROM c ORDER BY c.i DESC`, [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1], { ordered: true, pk: "strings" });
E("orderby.mixed_scalars_asc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND IS_DEFINED(c.v) AND NOT IS_ARRAY(c.v) AND NOT IS_OBJECT(c.v) ORDER BY c.v`, ids("t02 t03 t04 t07 t08 t05 t06 t16 t09 t13 t10 t12 t11"), {
  ordered: true,
  src: MIXED_ORDER,
  note: "null < false < true < -2 < 0 < 1 < 1.5 < 10 < 1e20 < \"\" < \"1\" < \"B\" < \"a\"",
});
E("orderby.mixed_scalars_desc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND IS_DEFINED(c.v) AND NOT IS_ARRAY(c.v) AND NOT IS_OBJECT(c.v) ORDER BY c.v DESC`, ids("t11 t12 t10 t13 t09 t16 t06 t05 t08 t07 t04 t03 t02"), {
  ordered: true,
  src: MIXED_ORDER,
});
E("orderby.mixed_with_array_object", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND IS_DEFINED(c.v) ORDER BY c.v`, ids("t02 t03 t04 t07 t08 t05 t06 t16 t09 t13 t10 t12 t11 t14 t15"), {
  ordered: true,
  src: MIXED_ORDER,
  note: "arrays after strings, objects after arrays",
});
E("orderby.mixed_with_undefined", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.v`, ids("t01 t02 t03 t04 t07 t08 t05 t06 t16 t09 t13 t10 t12 t11 t14 t15"), {
  ordered: true,
  unsure: true,
  src: OB,
  note: "the page says ORDER BY returns items where the property is undefined (first, as the lowest), but also that the default policy may not return them; this container indexes every path",
});
E("orderby.mixed_with_undefined_desc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.v DESC`, ids("t15 t14 t11 t12 t10 t13 t09 t16 t06 t05 t08 t07 t04 t03 t02 t01"), {
  ordered: true,
  unsure: true,
  src: OB,
});
E("orderby.strings_ordinal", `SELECT VALUE c.id FROM c WHERE c.kind = "s" ORDER BY c.s`, ids("s08 s09 s10 s02 s06 s01 s04 s05 s07 s11 s12 s03"), {
  ordered: true,
  note: "ordinal (code point) order: \"\", \"  padded  \", \"100%\", \"CAFÉ\", \"back\\\\slash\", \"café\", \"emoji…\", \"quote…\", \"tab…\", \"under_score\", \"Ü…\", \"日…\"",
});
E("orderby.strings_ordinal_desc", `SELECT VALUE c.id FROM c WHERE c.kind = "s" ORDER BY c.s DESC`, ids("s03 s12 s11 s07 s05 s04 s01 s06 s02 s10 s09 s08"), { ordered: true });
E("orderby.composite_desc_asc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.g DESC, c.n ASC`, ids("t09 t10 t11 t12 t13 t14 t15 t16 t01 t02 t03 t04 t05 t06 t07 t08"), { ordered: true, src: OB });
E("orderby.composite_asc_desc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.g ASC, c.n DESC`, ids("t08 t07 t06 t05 t04 t03 t02 t01 t16 t15 t14 t13 t12 t11 t10 t09"), {
  ordered: true,
  src: OB,
  note: "served by the (g desc, n asc) composite index read backwards",
});
E("orderby.composite_pk_id", `SELECT VALUE c.id FROM c WHERE c.kind = "m" OR c.pk = "families" ORDER BY c.pk ASC, c.id DESC`, ids("WakefieldFamily NoKidsFamily AndersenFamily m08 m07 m06 m05 m04 m03 m02 m01"), { ordered: true, src: OB });
E("orderby.projection", `SELECT c.id, c.price FROM c WHERE c.category = "small-bags" ORDER BY c.price DESC`, [
  { id: "8256269564", price: 62.21 },
  { id: "8601166197", price: 20.28 },
  { id: "4762595687", price: 5.11 },
], { ordered: true });
E("orderby.top_desc", `SELECT TOP 1 VALUE c.price FROM c WHERE IS_NUMBER(c.price) ORDER BY c.price DESC`, [87.66], { ordered: true, src: L + "keywords#top" });
E("orderby.docs_top", `SELECT TOP 3 VALUE p.price FROM products p WHERE IS_DEFINED(p.price) ORDER BY p.price ASC`, [5.11, 20.28, 24.5], { ordered: true, src: L + "keywords#top" });
E("orderby.nested_path", `SELECT VALUE f.id FROM Families f WHERE f.pk = "families" ORDER BY f.address.city`, ["WakefieldFamily", "NoKidsFamily", "AndersenFamily"], { ordered: true });
E("orderby.nested_path_partition", `SELECT VALUE f.address.city FROM Families f ORDER BY f.address.city DESC`, ["Seattle", "Redmond", "NY"], { ordered: true, pk: "families" });
E("orderby.with_where_partition", `SELECT VALUE c.id FROM c WHERE c.i > 13 ORDER BY c.i`, ["t14", "t15", "t16"], { ordered: true, pk: "types" });
E("orderby.string_names", `SELECT VALUE e.name FROM employees e WHERE e.team = "Leadership team" ORDER BY e.name`, ["Hannah Haynes", "Isaac Talbot", "Jennifer Wilkins", "Riley Johnson", "Sawyer Miller"], { ordered: true });
E("orderby.dates_as_strings", `SELECT VALUE c.id FROM c WHERE c.kind = "m" AND IS_DEFINED(c.dt) ORDER BY c.dt`, ids("m03 m02 m01 m04"), { ordered: true, note: "ISO strings sort as strings; \"not a date\" last" });
E("orderby.large_and_negative", `SELECT VALUE c.big FROM c WHERE IS_DEFINED(c.big) ORDER BY c.big`, [-9007199254740991, 9007199254740991], { ordered: true });
E("orderby.id_desc_join", `SELECT VALUE t.slug FROM p JOIN t IN p.tags WHERE p.id = "c2c2c2c2-dddd-eeee-ffff-a3a3a3a3a3a3" ORDER BY p.id DESC`, ["bag-insulation-synthetic-fill", "color-group-yellow", "bag-shape-mummy"], {
  unsure: true,
  note: "ties (one item) assumed to keep array order",
});
E("orderby.distinct_value", `SELECT DISTINCT VALUE c.g FROM c WHERE c.kind = "t" ORDER BY c.g DESC`, ["y", "x"], { ordered: true });

// ===================================================================
// OFFSET LIMIT
// ===================================================================

const OL = S + "offset-limit";
E("offset.docs_none", `SELECT VALUE { name: e.name } FROM employees e WHERE e.team = "Leadership team" ORDER BY e.name`, [
  { name: "Hannah Haynes" },
  { name: "Isaac Talbot" },
  { name: "Jennifer Wilkins" },
  { name: "Riley Johnson" },
  { name: "Sawyer Miller" },
], { ordered: true, src: S + "offset-limit-none" });
E("offset.docs_offset_1_limit_3", `SELECT VALUE { name: e.name } FROM employees e WHERE e.team = "Leadership team" ORDER BY e.name OFFSET 1 LIMIT 3`, [
  { name: "Isaac Talbot" },
  { name: "Jennifer Wilkins" },
  { name: "Riley Johnson" },
], { ordered: true, src: OL });
E("offset.docs_partial", `SELECT VALUE { name: e.name } FROM employees e WHERE e.team = "Leadership team" ORDER BY e.name OFFSET 1 LIMIT 5`, [
  { name: "Isaac Talbot" },
  { name: "Jennifer Wilkins" },
  { name: "Riley Johnson" },
  { name: "Sawyer Miller" },
], { ordered: true, src: S + "offset-limit-partial" });
E("offset.middle", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i OFFSET 3 LIMIT 4`, ids("t04 t05 t06 t07"), { ordered: true, src: OL });
E("offset.limit_zero", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i OFFSET 0 LIMIT 0`, [], { ordered: true });
E("offset.past_end", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i OFFSET 100 LIMIT 5`, [], { ordered: true });
E("offset.parameters", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i OFFSET @o LIMIT @l`, ["t15", "t16"], {
  ordered: true,
  parameters: [
    { name: "@o", value: 14 },
    { name: "@l", value: 10 },
  ],
});
E("offset.desc", `SELECT VALUE c.id FROM c WHERE c.kind = "t" ORDER BY c.i DESC OFFSET 1 LIMIT 2`, ["t15", "t14"], { ordered: true });
E("offset.partition", `SELECT VALUE c.id FROM c ORDER BY c.id OFFSET 6 LIMIT 10`, ["m07", "m08"], { ordered: true, pk: "misc" });
E("offset.zero_offset", `SELECT VALUE c.id FROM c WHERE c.kind = "m" ORDER BY c.id DESC OFFSET 0 LIMIT 2`, ["m08", "m07"], { ordered: true });
E("offset.without_order_count", `SELECT VALUE c.id FROM c WHERE c.kind = "t" OFFSET 10 LIMIT 100`, [], {
  check: (rows) => (rows.length === 6 && new Set(rows).size === 6 && rows.every((r) => /^t\d\d$/.test(r)) ? null : "want 6 distinct t ids (16 matches, offset 10)"),
});
E("offset.join", `SELECT VALUE p.givenName FROM f JOIN ch IN f.children JOIN p IN ch.pets ORDER BY f.id OFFSET 1 LIMIT 1`, [], {
  check: (rows) => (rows.length === 1 && ["Goofy", "Shadow"].includes(rows[0]) ? null : "want one of Wakefield's pets (Andersen's Fluffy is skipped)"),
});

// ===================================================================
// GROUP BY
// ===================================================================

const GB = L + "group-by";
E("groupby.docs_single", `SELECT e.capabilities.softwareDevelopment AS developmentLang FROM employees e WHERE e.team = "Cloud software engineering" GROUP BY e.capabilities.softwareDevelopment`, [
  {},
  { developmentLang: "c-sharp" },
  { developmentLang: "javascript" },
  { developmentLang: "python" },
], { src: S + "group-by" });
E("groupby.docs_count", `SELECT COUNT(1) AS trainedEmployees, e.capabilities.softwareDevelopment AS developmentLang FROM employees e WHERE e.team = "Cloud software engineering" GROUP BY e.capabilities.softwareDevelopment`, [
  { trainedEmployees: 1 },
  { trainedEmployees: 1, developmentLang: "c-sharp" },
  { trainedEmployees: 3, developmentLang: "javascript" },
  { trainedEmployees: 2, developmentLang: "python" },
], { src: S + "group-by-aggregate" });
E("groupby.docs_multiple", `SELECT COUNT(1) AS employeesWithThisTraining, e.capabilities.softwareDevelopment AS developmentLang, e.capabilities.mediaTrained AS mediaReady FROM employees e WHERE e.team = "Cloud software engineering" GROUP BY e.capabilities.softwareDevelopment, e.capabilities.mediaTrained`, [
  { employeesWithThisTraining: 1, developmentLang: "python", mediaReady: true },
  { employeesWithThisTraining: 1, developmentLang: "javascript", mediaReady: false },
  { employeesWithThisTraining: 1, developmentLang: "c-sharp", mediaReady: true },
  { employeesWithThisTraining: 2, developmentLang: "javascript", mediaReady: true },
  { employeesWithThisTraining: 1, mediaReady: true },
  { employeesWithThisTraining: 1, developmentLang: "python", mediaReady: false },
], { src: S + "group-by-multiple" });
E("groupby.count", `SELECT c.g, COUNT(1) AS n FROM c WHERE c.kind = "t" GROUP BY c.g`, [{ g: "x", n: 8 }, { g: "y", n: 8 }], { src: GB });
E("groupby.all_aggregates", `SELECT c.g, SUM(c.n) AS s, AVG(c.n) AS a, MIN(c.n) AS lo, MAX(c.n) AS hi, COUNT(c.n) AS k FROM c WHERE c.kind = "t" GROUP BY c.g`, [
  { g: "x", s: 36, a: 4.5, lo: 1, hi: 8, k: 8 },
  { g: "y", s: 100, a: 12.5, lo: 9, hi: 16, k: 8 },
], { src: GB });
E("groupby.value_count", `SELECT VALUE COUNT(1) FROM c WHERE c.kind = "t" GROUP BY c.g`, [8, 8], { src: GB });
E("groupby.partition_key", `SELECT c.pk, COUNT(1) AS n FROM c GROUP BY c.pk`, [
  { pk: "families", n: 3 },
  { pk: "employees", n: 31 },
  { pk: "products", n: 32 },
  { pk: "types", n: 16 },
  { pk: "strings", n: 12 },
  { pk: "misc", n: 8 },
], { src: GB });
E("groupby.system_function", `SELECT VALUE COUNT(1) FROM c WHERE c.kind = "t" GROUP BY IS_NUMBER(c.v)`, [6, 10], { src: GB, note: "numbers: t05 t06 t07 t08 t09 t16" });
E("groupby.system_function_selected", `SELECT IS_NUMBER(c.v) AS isNumber, COUNT(1) AS n FROM c WHERE c.kind = "t" GROUP BY IS_NUMBER(c.v)`, [
  { isNumber: true, n: 6 },
  { isNumber: false, n: 10 },
], { src: GB });
E("groupby.nested_path", `SELECT f.address.state, COUNT(1) AS n FROM f WHERE f.pk = "families" GROUP BY f.address.state`, [{ state: "WA", n: 2 }, { state: "NY", n: 1 }], { src: GB });
E("groupby.undefined_key", `SELECT c.partTime AS pt, COUNT(1) AS n FROM c WHERE c.team = "Facilities" OR c.team = "Hospitality" GROUP BY c.partTime`, [
  { pt: true, n: 2 },
  { pt: false, n: 1 },
  { n: 3 },
], { src: S + "group-by", note: "undefined is its own group and projects no property" });
E("groupby.mixed_type_keys", `SELECT VALUE c.v FROM c WHERE c.kind = "t" AND c.i <= 13 GROUP BY c.v`, [null, false, true, 1, 1.5, -2, 0, 1e20, "1", "a", "B", ""], {
  src: GB,
  note: "t01 (undefined) is a group whose VALUE is undefined: no row",
});
E("groupby.one_vs_string_one", `SELECT c.v AS key, COUNT(1) AS n FROM c WHERE c.id IN ("t05", "t10") GROUP BY c.v`, [{ key: 1, n: 1 }, { key: "1", n: 1 }]);
E("groupby.join", `SELECT t.slug, COUNT(1) AS n FROM p JOIN t IN p.tags WHERE p.categoryName = "Sleeping Bags" GROUP BY t.slug`, [
  { slug: "bag-shape-mummy", n: 2 },
  { slug: "bag-insulation-down-fill", n: 1 },
  { slug: "bag-insulation-synthetic-fill", n: 1 },
  { slug: "color-group-yellow", n: 1 },
], { src: GB });
E("groupby.literal_in_select", `SELECT c.g, "const" AS k, COUNT(1) AS n FROM c WHERE c.kind = "t" GROUP BY c.g`, [
  { g: "x", k: "const", n: 8 },
  { g: "y", k: "const", n: 8 },
], { src: GB, note: "literals are always allowed in the SELECT of a GROUP BY query" });
E("groupby.two_keys", `SELECT c.g, c.n % 2 AS odd, COUNT(1) AS n FROM c WHERE c.kind = "t" GROUP BY c.g, c.n % 2`, [
  { g: "x", odd: 1, n: 4 },
  { g: "x", odd: 0, n: 4 },
  { g: "y", odd: 1, n: 4 },
  { g: "y", odd: 0, n: 4 },
], { src: GB });
E("groupby.partition", `SELECT c.g, MAX(c.i) AS maxi FROM c GROUP BY c.g`, [{ g: "x", maxi: 8 }, { g: "y", maxi: 16 }], { pk: "types", src: GB, note: "TOP is a keyword, not an identifier, in the Cosmos grammar (sql.g4), so the alias is not 'top'" });
E("groupby.no_rows", `SELECT c.g, COUNT(1) AS n FROM c WHERE c.kind = "none" GROUP BY c.g`, [], { src: GB });
E("groupby.offset_limit", `SELECT VALUE c.g FROM c WHERE c.kind = "t" GROUP BY c.g OFFSET 0 LIMIT 5`, ["x", "y"], { src: GB, note: "GROUP BY comes before OFFSET LIMIT" });
E("groupby.sum_prices", `SELECT p.category, SUM(p.price) AS total FROM p WHERE p.category IN ("activity-bracelet", "fashion-bracelet") GROUP BY p.category`, [
  { category: "activity-bracelet", total: 98.83 },
  { category: "fashion-bracelet", total: 115.26 },
], { approx: true });

// ===================================================================
// Aggregates without GROUP BY
// ===================================================================

E("agg.docs_average", `SELECT VALUE AVG(p.price) FROM products p WHERE p.category = "small-bags"`, [29.2], { approx: true, src: S + "average" });
E("agg.docs_count_field", `SELECT VALUE COUNT(p.name) FROM products p WHERE p.category = "socks"`, [2], { src: S + "count", note: "an item without name is not counted" });
E("agg.docs_count_expression", `SELECT VALUE { countScalar: COUNT(1), countExpression: COUNT(2 + 3) }`, [{ countScalar: 1, countExpression: 1 }], { src: S + "count-expression" });
E("agg.docs_max", `SELECT MAX(p.price) AS maxPrice FROM products p WHERE p.category = "activity-bracelet"`, [{ maxPrice: 71.76 }], { src: S + "max" });
E("agg.docs_min", `SELECT MIN(p.price) AS minPrice FROM products p WHERE p.category = "fashion-bracelet"`, [{ minPrice: 27.6 }], { src: S + "min" });
E("agg.docs_sum_skips_undefined", `SELECT VALUE SUM(p.quantity) FROM products p WHERE p.category = "hiking-bags"`, [50], { src: S + "sum" });
E("agg.count_kind", `SELECT VALUE COUNT(1) FROM c WHERE c.kind = "t"`, [16]);
E("agg.count_partition", `SELECT VALUE COUNT(1) FROM c`, [12], { pk: "strings" });
E("agg.count_defined_values", `SELECT VALUE COUNT(c.v) FROM c WHERE c.kind = "t"`, [15], {
  src: S + "count",
  unsure: true,
  note: "undefined is not counted (sample); assumed null, arrays and objects are",
});
E("agg.sum", `SELECT VALUE SUM(c.n) FROM c WHERE c.kind = "t"`, [136], { src: L + "sum" });
E("agg.avg", `SELECT VALUE AVG(c.n) FROM c WHERE c.kind = "t"`, [8.5], { src: L + "average" });
E("agg.min", `SELECT VALUE MIN(c.n) FROM c WHERE c.kind = "t"`, [1], { src: L + "min" });
E("agg.max", `SELECT VALUE MAX(c.n) FROM c WHERE c.kind = "t"`, [16], { src: L + "max" });
E("agg.several", `SELECT COUNT(1) AS n, SUM(c.n) AS s, MIN(c.id) AS first, MAX(c.id) AS last FROM c WHERE c.kind = "t"`, [{ n: 16, s: 136, first: "t01", last: "t16" }]);
E("agg.sum_mixed_is_undefined", `SELECT SUM(c.v) AS s FROM c WHERE c.kind = "t"`, [{}], { src: L + "sum", note: "a string, boolean or null argument makes SUM undefined" });
E("agg.sum_mixed_value", `SELECT VALUE SUM(c.v) FROM c WHERE c.kind = "t"`, [], {
  src: L + "sum",
  unsure: true,
  note: "assumed SELECT VALUE of the undefined aggregate gives no row",
});
E("agg.avg_mixed_is_undefined", `SELECT AVG(c.v) AS a FROM c WHERE c.kind = "t" AND (IS_NUMBER(c.v) OR IS_STRING(c.v))`, [{}], { src: L + "average", unsure: true, note: "assumed AVG follows SUM's rule" });
E("agg.sum_numbers", `SELECT VALUE SUM(c.v) FROM c WHERE c.kind = "t" AND IS_NUMBER(c.v)`, [1e20], { approx: true, note: "1e20 absorbs 10.5" });
E("agg.avg_numbers", `SELECT VALUE AVG(c.v) FROM c WHERE c.kind = "t" AND IS_NUMBER(c.v)`, [1e20 / 6], { approx: true });
E("agg.min_numbers", `SELECT VALUE MIN(c.v) FROM c WHERE c.kind = "t" AND IS_NUMBER(c.v)`, [-2]);
E("agg.max_numbers", `SELECT VALUE MAX(c.v) FROM c WHERE c.kind = "t" AND IS_NUMBER(c.v)`, [1e20]);
E("agg.sum_skips_undefined", `SELECT VALUE SUM(c.v) FROM c WHERE c.kind = "t" AND (IS_NUMBER(c.v) OR NOT IS_DEFINED(c.v))`, [1e20], { approx: true, src: L + "sum" });
E("agg.max_mixed", `SELECT VALUE MAX(c.v) FROM c WHERE c.kind = "t" AND NOT IS_ARRAY(c.v) AND NOT IS_OBJECT(c.v)`, ["a"], { src: L + "max", note: "string > number > boolean > null" });
E("agg.min_mixed", `SELECT VALUE MIN(c.v) FROM c WHERE c.kind = "t" AND NOT IS_ARRAY(c.v) AND NOT IS_OBJECT(c.v)`, [null], { src: L + "min", note: "null is the lowest" });
E("agg.max_bool_number", `SELECT VALUE MAX(c.v) FROM c WHERE c.kind = "t" AND (IS_BOOL(c.v) OR IS_NUMBER(c.v))`, [1e20], { src: L + "max" });
E("agg.min_bool_number", `SELECT VALUE MIN(c.v) FROM c WHERE c.kind = "t" AND (IS_BOOL(c.v) OR IS_NUMBER(c.v))`, [false], { src: L + "min" });
E("agg.max_strings", `SELECT VALUE MAX(c.s) FROM c WHERE c.kind = "s"`, ["日本語テキスト"], { src: L + "max" });
E("agg.min_strings", `SELECT VALUE MIN(c.s) FROM c WHERE c.kind = "s"`, [""], { src: L + "min" });
E("agg.count_empty", `SELECT VALUE COUNT(1) FROM c WHERE c.id = "nope"`, [0]);
E("agg.count_empty_object", `SELECT COUNT(1) AS n FROM c WHERE c.id = "nope"`, [{ n: 0 }]);
E("agg.sum_empty", `SELECT VALUE SUM(c.n) FROM c WHERE c.id = "nope"`, [0], { unsure: true, note: "assumed SUM over no rows is 0" });
E("agg.avg_empty", `SELECT AVG(c.n) AS a FROM c WHERE c.id = "nope"`, [{}], { unsure: true, note: "assumed AVG over no rows is undefined" });
E("agg.max_empty", `SELECT MAX(c.n) AS m FROM c WHERE c.id = "nope"`, [{}], { unsure: true, note: "assumed MAX over no rows is undefined" });
E("agg.over_join", `SELECT VALUE SUM(ch.grade) FROM f JOIN ch IN f.children`, [14]);
E("agg.in_expression", `SELECT VALUE COUNT(1) * 2 + 1 FROM c WHERE c.kind = "m"`, [17], { unsure: true, note: "an aggregate inside a larger scalar expression" });
E("agg.in_object", `SELECT VALUE { n: COUNT(1), s: SUM(c.i) } FROM c WHERE c.kind = "s"`, [{ n: 12, s: 78 }]);
E("agg.count_distinct_subquery", `SELECT VALUE COUNT(1) FROM (SELECT DISTINCT VALUE e.team FROM e WHERE e.pk = "employees") AS t`, [8], { unsure: true, note: "a subquery in FROM" });
E("agg.partition_sum", `SELECT VALUE SUM(c.i) FROM c`, [78], { pk: "strings" });
E("agg.count_array_elements", `SELECT VALUE COUNT(1) FROM c JOIN x IN c.arr2d JOIN y IN x`, [4]);
E("agg.bracelet_avg", `SELECT VALUE AVG(p.price) FROM p WHERE p.category = "fashion-bracelet"`, [57.63], { approx: true });

// ===================================================================
// Subqueries: EXISTS, ARRAY, scalar
// ===================================================================

const SQ = L + "subquery";
E("subq.docs_exists_undefined", `SELECT EXISTS (SELECT VALUE undefined)`, [{ $1: false }], { src: SQ + "#exists-expression" });
E("subq.docs_exists_empty_object", `SELECT EXISTS (SELECT undefined)`, [{ $1: true }], { src: SQ + "#exists-expression" });
E("subq.docs_exists_filter", `SELECT VALUE p.name FROM products p WHERE EXISTS (SELECT VALUE a FROM a IN p.accessories WHERE a.type = "chains" AND a.quantityOnHand >= 10)`, ["Unobtani road bike"], {
  src: SQ + "#exists-expression",
});
E("subq.docs_exists_alias", `SELECT p.name, EXISTS (SELECT VALUE a FROM a IN p.accessories WHERE a.type = "chains" AND a.quantityOnHand >= 10) AS chainAccessoryAvailable FROM products p WHERE p.id = "unobtani-road-bike"`, [
  { name: "Unobtani road bike", chainAccessoryAvailable: true },
], { src: SQ + "#exists-expression" });
E("subq.exists_false_rows", `SELECT VALUE EXISTS (SELECT VALUE x FROM x IN c.items) FROM c WHERE c.kind = "m"`, [false, false, true, true, false, false, false, false], {
  note: "m03 and m04 have elements; m05 is empty, m06 is a string",
});
E("subq.exists_tag_string", `SELECT VALUE p.id FROM p WHERE EXISTS (SELECT VALUE t FROM t IN p.tags WHERE t = "Turbo")`, ["68719519522"], { src: SQ + "#exists-expression" });
E("subq.not_exists", `SELECT VALUE f.id FROM f WHERE f.pk = "families" AND NOT EXISTS (SELECT VALUE ch FROM ch IN f.children WHERE ch.grade > 4)`, ["NoKidsFamily"]);
E("subq.exists_constant", `SELECT VALUE EXISTS (SELECT VALUE 1)`, [true]);
E("subq.docs_array", `SELECT p.name, ARRAY (SELECT VALUE t.name FROM t in p.tags) AS tagNames FROM products p WHERE p.id = "radimer-mountain-bike"`, [
  { name: "Radimer mountain bike", tagNames: ["road", "bike", "competitive"] },
], { src: SQ + "#array-expression" });
E("subq.docs_array_filter", `SELECT p.name, ARRAY (SELECT VALUE t.name FROM t in p.tags) AS tagNames, ARRAY (SELECT VALUE t.name FROM t in p.tags WHERE CONTAINS(t.name, "bike")) AS bikeTagNames FROM products p WHERE p.id = "radimer-mountain-bike"`, [
  { name: "Radimer mountain bike", tagNames: ["road", "bike", "competitive"], bikeTagNames: ["bike"] },
], { src: SQ + "#array-expression" });
E("subq.array_empty", `SELECT VALUE ARRAY (SELECT VALUE ch.givenName FROM ch IN f.children) FROM f WHERE f.id = "NoKidsFamily"`, [[]]);
E("subq.array_computed", `SELECT VALUE ARRAY (SELECT VALUE x * 2 FROM x IN c.v) FROM c WHERE c.id = "t14"`, [[2, 4]]);
E("subq.array_objects", `SELECT VALUE ARRAY (SELECT i.name, i.qty FROM i IN c.items WHERE i.qty > 2) FROM c WHERE c.id = "m03"`, [[{ name: "b", qty: 5 }]]);
E("subq.docs_scalar_constants", `SELECT (SELECT VALUE 1) AS a, (SELECT VALUE 2) AS b`, [{ a: 1, b: 2 }], { src: SQ + "#simple-expression-scalar-subqueries" });
E("subq.docs_scalar_concat", `SELECT (SELECT VALUE Concat('ID-', p.id)) AS internalId FROM products p WHERE p.category = "socks"`, [
  { internalId: "ID-5922901576" },
  { internalId: "ID-1859046259" },
  { internalId: "ID-3656853690" },
], { src: SQ + "#simple-expression-scalar-subqueries" });
E("subq.docs_scalar_filtered", `SELECT p.id, (SELECT p.name WHERE CONTAINS(p.name, "bag")).name FROM products p WHERE p.category = "small-bags"`, [
  { id: "8601166197", name: "Glaark bag" },
  { id: "4762595687" },
  { id: "8256269564" },
], { src: SQ + "#simple-expression-scalar-subqueries" });
E("subq.docs_count", `SELECT p.name, (SELECT VALUE COUNT(1) FROM i IN p.inventory) AS locationCount FROM products p WHERE p.id = "snow-coat"`, [{ name: "Snow coat", locationCount: 3 }], { src: SQ + "#aggregate-scalar-subqueries" });
E("subq.docs_count_filter", `SELECT p.name, (SELECT VALUE COUNT(1) FROM i IN p.inventory WHERE ENDSWITH(i.location, "WA")) AS washingtonLocationCount FROM products p WHERE p.id = "snow-coat"`, [
  { name: "Snow coat", washingtonLocationCount: 2 },
], { src: SQ + "#aggregate-scalar-subqueries" });
E("subq.docs_multiple_aggregates", `SELECT p.name, (SELECT COUNT(1) AS locationCount, SUM(i.quantity) AS totalQuantity FROM i IN p.inventory) AS inventoryData FROM products p WHERE p.id = "snow-coat"`, [
  { name: "Snow coat", inventoryData: { locationCount: 3, totalQuantity: 105 } },
], { src: SQ + "#aggregate-scalar-subqueries", note: "the page prints 2 and 75 for its three-location item; the arithmetic gives 3 and 105" });
E("subq.docs_projection_and_filter", `SELECT p.name, (SELECT VALUE AVG(q.quantity) FROM q IN p.inventory WHERE q.quantity > 10) AS averageInventory FROM products p WHERE (SELECT VALUE COUNT(1) FROM i IN p.inventory WHERE i.quantity > 10) >= 1`, [
  { name: "Snow coat", averageInventory: 35 },
], { src: SQ + "#aggregate-scalar-subqueries" });
E("subq.scalar_in_where", `SELECT VALUE f.id FROM f WHERE (SELECT VALUE COUNT(1) FROM ch IN f.children) = 2`, ["WakefieldFamily"]);
E("subq.scalar_max", `SELECT VALUE (SELECT VALUE MAX(ch.grade) FROM ch IN f.children) FROM f WHERE f.pk = "families"`, [5, 8], { unsure: true, note: "assumed MAX over NoKidsFamily's no children is undefined: no row" });
E("subq.scalar_first_value", `SELECT VALUE (SELECT VALUE t.slug FROM t IN p.tags WHERE STARTSWITH(t.slug, "color")) FROM p WHERE p.categoryName = "Sleeping Bags"`, ["color-group-yellow"], {
  note: "Maresse has no color tag: undefined, no row",
});
E("subq.array_contains_equivalent", `SELECT VALUE p.id FROM p WHERE ARRAY_CONTAINS(p.tags, "Turbo")`, ["68719519522"], { src: SQ + "#exists-expression" });
E("subq.exists_join_equivalent", `SELECT VALUE COUNT(1) FROM p WHERE EXISTS (SELECT VALUE t FROM t IN p.tags WHERE t.slug = "bag-shape-mummy")`, [2]);

// ===================================================================
// Parameters
// ===================================================================

const P = (name, value) => ({ name, value });
E("params.string", `SELECT VALUE c.id FROM c WHERE c.s = @s`, ["s01"], { parameters: [P("@s", "café")] });
E("params.string_quotes", `SELECT VALUE c.id FROM c WHERE c.s = @s`, ["s05"], { parameters: [P("@s", "quote \" and 'single'")] });
E("params.string_astral", `SELECT VALUE c.id FROM c WHERE c.s = @s`, ["s04"], { parameters: [P("@s", "emoji 😀 here")] });
E("params.string_control", `SELECT VALUE c.id FROM c WHERE c.s = @s`, ["s07"], { parameters: [P("@s", "tab\there\nnewline")] });
E("params.number_float", `SELECT VALUE c.id FROM c WHERE c.v = @v`, ["t06"], { parameters: [P("@v", 1.5)] });
E("params.number_int", `SELECT VALUE c.id FROM c WHERE c.v = @v`, ["t16"], { parameters: [P("@v", 10)] });
E("params.number_large", `SELECT VALUE c.id FROM c WHERE c.v = @v`, ["t09"], { parameters: [P("@v", 1e20)] });
E("params.number_not_string", `SELECT VALUE c.id FROM c WHERE c.v = @v`, ["t10"], { parameters: [P("@v", "1")] });
E("params.boolean", `SELECT VALUE c.id FROM c WHERE c.v = @b`, ["t03"], { parameters: [P("@b", false)] });
E("params.null", `SELECT VALUE c.id FROM c WHERE c.v = @n`, ["t02"], { parameters: [P("@n", null)] });
E("params.array_equal", `SELECT VALUE c.id FROM c WHERE c.v = @a`, ["t14"], { parameters: [P("@a", [1, 2])] });
E("params.object_equal", `SELECT VALUE c.id FROM c WHERE c.v = @o`, ["t15"], { parameters: [P("@o", { a: 1 })] });
E("params.array_contains_ids", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)`, ["t01", "t03", "s02"], { parameters: [P("@ids", ["t01", "t03", "s02", "zz"])], src: L + "array-contains" });
E("params.array_contains_partition", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)`, ["t03"], { pk: "types", parameters: [P("@ids", ["t03", "s02"])] });
E("params.in_list", `SELECT VALUE c.id FROM c WHERE c.id IN (@a, @b, @c)`, ["m01", "t16"], { parameters: [P("@a", "m01"), P("@b", "t16"), P("@c", "nope")] });
E("params.between", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND c.i BETWEEN @lo AND @hi`, ["t07", "t08"], { parameters: [P("@lo", 7), P("@hi", 8)] });
E("params.like_pattern", `SELECT VALUE c.id FROM c WHERE c.s LIKE @p`, ["s01"], { parameters: [P("@p", "caf%")] });
E("params.select_value", `SELECT VALUE @x`, [{ k: [1, "two", null, { d: true }] }], { parameters: [P("@x", { k: [1, "two", null, { d: true }] })] });
E("params.unused", `SELECT VALUE 1`, [1], { parameters: [P("@unused", "x")] });
E("params.function_arg", `SELECT VALUE UPPER(@s)`, ["ABC"], { parameters: [P("@s", "abc")] });
E("params.two_uses", `SELECT VALUE c.id FROM c WHERE c.n = @n OR c.i = @n + 1`, ["t03", "t04"], { pk: "types", parameters: [P("@n", 3)] });
E("params.array_index", `SELECT VALUE @a[1]`, ["b"], { parameters: [P("@a", ["a", "b"])] });
E("params.object_member", `SELECT VALUE @o.k`, [7], { parameters: [P("@o", { k: 7 })] });
E("params.partial_array_contains", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.items, @item, true)`, ["m03", "m04"], { parameters: [P("@item", { color: "red" })] });
E("params.top_offset", `SELECT TOP @t VALUE c.id FROM c WHERE c.kind = "s" ORDER BY c.i`, ["s01"], { ordered: true, parameters: [P("@t", 1)] });

// ===================================================================
// Built-in functions: the reference pages' own examples (constant
// expressions), then the same functions over the data set
// ===================================================================

// ---- type checks ----
E("fn_type.docs_is_array", `SELECT VALUE { booleanIsArray: IS_ARRAY(true), numberIsArray: IS_ARRAY(65), stringIsArray: IS_ARRAY("AdventureWorks"), nullIsArray: IS_ARRAY(null), objectIsArray: IS_ARRAY({size: "small"}), arrayIsArray: IS_ARRAY([25344, 82947]), arrayObjectPropertyIsArray: IS_ARRAY({skus: [25344, 82947], vendors: null}.skus), invalidObjectPropertyIsArray: IS_ARRAY({skus: [25344, 82947], vendors: null}.size), nullObjectPropertyIsArray: IS_ARRAY({skus: [25344, 82947], vendors: null}.vendor) }`,
  [{ booleanIsArray: false, numberIsArray: false, stringIsArray: false, nullIsArray: false, objectIsArray: false, arrayIsArray: true, arrayObjectPropertyIsArray: true, invalidObjectPropertyIsArray: false, nullObjectPropertyIsArray: false }], { src: S + "is-array" });
E("fn_type.docs_is_bool", `SELECT VALUE { booleanIsBool: IS_BOOL(true), numberIsBool: IS_BOOL(65), stringIsBool: IS_BOOL("AdventureWorks"), nullIsBool: IS_BOOL(null), objectIsBool: IS_BOOL({size: "small"}), arrayIsBool: IS_BOOL([25344, 82947]), arrayObjectPropertyIsBool: IS_BOOL({skus: [25344, 82947], vendors: null}.skus), invalidObjectPropertyIsBool: IS_BOOL({skus: [25344, 82947], vendors: null}.size), nullObjectPropertyIsBool: IS_BOOL({skus: [25344, 82947], vendors: null}.vendor) }`,
  [{ booleanIsBool: true, numberIsBool: false, stringIsBool: false, nullIsBool: false, objectIsBool: false, arrayIsBool: false, arrayObjectPropertyIsBool: false, invalidObjectPropertyIsBool: false, nullObjectPropertyIsBool: false }], { src: S + "is-bool" });
E("fn_type.docs_is_defined", `SELECT VALUE { isDefined: IS_DEFINED({ "quantity" : 5 }.quantity), isNotDefined: IS_DEFINED({ "quantity" : 5 }.name) }`, [{ isDefined: true, isNotDefined: false }], { src: S + "is-defined" });
E("fn_type.docs_is_finite_number", `SELECT VALUE { finiteValue: IS_FINITE_NUMBER(1234.567), infiniteValue: IS_FINITE_NUMBER(8.9 / 0.0), nanValue: IS_FINITE_NUMBER(SQRT(-1.0)) }`, [{ finiteValue: true, infiniteValue: false, nanValue: false }], { src: S + "is-finite-number" });
E("fn_type.docs_is_integer", `SELECT VALUE { smallDecimalValue: IS_INTEGER(3454.123), integerValue: IS_INTEGER(5523432), minIntegerValue: IS_INTEGER(-9223372036854775808), maxIntegerValue: IS_INTEGER(9223372036854775807), outOfRangeValue: IS_INTEGER(18446744073709551615) }`,
  [{ smallDecimalValue: false, integerValue: true, minIntegerValue: true, maxIntegerValue: true, outOfRangeValue: false }], { src: S + "is-integer", unsure: true, note: "9223372036854775807 is 2^63 as a double; the sample says true: the literal is read as a 64-bit integer" });
E("fn_type.docs_is_null", `SELECT VALUE { booleanIsNull: IS_NULL(true), numberIsNull: IS_NULL(15), stringIsNull: IS_NULL("AdventureWorks"), nullIsNull: IS_NULL(null), objectIsNull: IS_NULL({price: 85.23}), arrayIsNull: IS_NULL(["red", "blue", "yellow"]), populatedObjectPropertyIsNull: IS_NULL({quantity: 25, vendor: null}.quantity), invalidObjectPropertyIsNull: IS_NULL({quantity: 25, vendor: null}.size), nullObjectPropertyIsNull: IS_NULL({quantity: 25, vendor: null}.vendor) }`,
  [{ booleanIsNull: false, numberIsNull: false, stringIsNull: false, nullIsNull: true, objectIsNull: false, arrayIsNull: false, populatedObjectPropertyIsNull: false, invalidObjectPropertyIsNull: false, nullObjectPropertyIsNull: true }], { src: S + "is-null" });
E("fn_type.docs_is_number", `SELECT VALUE { isBooleanANumber: IS_NUMBER(true), isNumberANumber: IS_NUMBER(1), isStringANumber: IS_NUMBER("value"), isNullANumber: IS_NUMBER(null), isObjectANumber: IS_NUMBER({ "name": "Tecozow coat" }), isObjectStringPropertyANumber: IS_NUMBER({ "name": "Tecozow coat" }.name), isObjectNumberPropertyANumber: IS_NUMBER({ "quantity": 0 }.quantity), isUndefinedANumber: IS_NUMBER({}.category) }`,
  [{ isBooleanANumber: false, isNumberANumber: true, isStringANumber: false, isNullANumber: false, isObjectANumber: false, isObjectStringPropertyANumber: false, isObjectNumberPropertyANumber: true, isUndefinedANumber: false }], { src: S + "is-number" });
E("fn_type.docs_is_object", `SELECT VALUE { isBooleanAnObject: IS_OBJECT(true), isNumberAnObject: IS_OBJECT(1), isStringAnObject: IS_OBJECT("value"), isArrayAnObject: IS_OBJECT([ "green", "red", "yellow" ]), isNullAnObject: IS_OBJECT(null), isObjectAnObject: IS_OBJECT({ "name": "Tecozow coat" }), isObjectStringPropertyAnObject: IS_OBJECT({ "name": "Tecozow coat" }.name), isObjectObjectPropertyAnObject: IS_OBJECT({ "quantity": { "count": 0 } }.quantity), isUndefinedAnObject: IS_OBJECT({}.category) }`,
  [{ isBooleanAnObject: false, isNumberAnObject: false, isStringAnObject: false, isArrayAnObject: false, isNullAnObject: false, isObjectAnObject: true, isObjectStringPropertyAnObject: false, isObjectObjectPropertyAnObject: true, isUndefinedAnObject: false }], { src: S + "is-object" });
E("fn_type.docs_is_primitive", `SELECT VALUE { isBooleanAPrimitive: IS_PRIMITIVE(true), isNumberAPrimitive: IS_PRIMITIVE(1), isStringAPrimitive: IS_PRIMITIVE("value"), isArrayAPrimitive: IS_PRIMITIVE([ "green", "red", "yellow" ]), isNullAPrimitive: IS_PRIMITIVE(null), isObjectAPrimitive: IS_PRIMITIVE({ "name": "Tecozow coat" }), isObjectStringPropertyAPrimitive: IS_PRIMITIVE({ "name": "Tecozow coat" }.name), isObjectBooleanPropertyAPrimitive: IS_PRIMITIVE({ "onSale": false }.onSale), isUndefinedAPrimitive: IS_PRIMITIVE({}.category) }`,
  [{ isBooleanAPrimitive: true, isNumberAPrimitive: true, isStringAPrimitive: true, isArrayAPrimitive: false, isNullAPrimitive: true, isObjectAPrimitive: false, isObjectStringPropertyAPrimitive: true, isObjectBooleanPropertyAPrimitive: true, isUndefinedAPrimitive: false }], { src: S + "is-primitive" });
E("fn_type.docs_is_string", `SELECT VALUE { isBooleanAString: IS_STRING(true), isNumberAString: IS_STRING(1), isStringAString: IS_STRING("value"), isArrayAString: IS_STRING([ "green", "red", "yellow" ]), isNullAString: IS_STRING(null), isObjectAString: IS_STRING({ "name": "Tecozow coat" }), isObjectStringPropertyAString: IS_STRING({ "name": "Tecozow coat" }.name), isObjectBooleanPropertyAString: IS_STRING({ "onSale": false }.onSale), isUndefinedAString: IS_STRING({}.category) }`,
  [{ isBooleanAString: false, isNumberAString: false, isStringAString: true, isArrayAString: false, isNullAString: false, isObjectAString: false, isObjectStringPropertyAString: true, isObjectBooleanPropertyAString: false, isUndefinedAString: false }], { src: S + "is-string" });
const WT = (name, cond, expectedIds, o = {}) => E(name, `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND ${cond}`, ids(expectedIds), o);
WT("fn_type.is_number_data", "IS_NUMBER(c.v)", "t05 t06 t07 t08 t09 t16", { src: L + "is-number" });
WT("fn_type.is_string_data", "IS_STRING(c.v)", "t10 t11 t12 t13", { src: L + "is-string" });
WT("fn_type.is_bool_data", "IS_BOOL(c.v)", "t03 t04", { src: L + "is-bool" });
WT("fn_type.is_null_data", "IS_NULL(c.v)", "t02", { src: L + "is-null" });
WT("fn_type.is_array_data", "IS_ARRAY(c.v)", "t14", { src: L + "is-array" });
WT("fn_type.is_object_data", "IS_OBJECT(c.v)", "t15", { src: L + "is-object" });
WT("fn_type.is_primitive_data", "IS_PRIMITIVE(c.v)", "t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t16", { src: L + "is-primitive" });
WT("fn_type.is_defined_data", "IS_DEFINED(c.v)", "t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16", { src: L + "is-defined" });
WT("fn_type.is_integer_data", "IS_INTEGER(c.v)", "t05 t07 t08 t16", { src: L + "is-integer", note: "1e20 is outside the 64-bit range: false" });
WT("fn_type.is_finite_data", "IS_FINITE_NUMBER(c.v)", "t05 t06 t07 t08 t09 t16", { src: L + "is-finite-number" });
E("fn_type.is_integer_big", `SELECT VALUE IS_INTEGER(c.big) FROM c WHERE c.id = "m01"`, [true], { src: L + "is-integer" });
E("fn_type.type_of_missing", `SELECT VALUE [IS_STRING(c.nope), IS_DEFINED(c.nope), IS_NULL(c.nope)] FROM c WHERE c.id = "t01"`, [[false, false, false]]);

// ---- string functions ----
const AW = `"AdventureWorks"`;
E("fn_str.docs_concat", `SELECT VALUE CONCAT("adventure", "works")`, ["adventureworks"], { src: S + "concat" });
E("fn_str.docs_concat_fields", `SELECT VALUE { sku: CONCAT(p.slug, "-", p.category, "-", p.model) } FROM products p WHERE p.category = "heavy-coats"`, [{ sku: "duonovi-pro-coat-heavy-coats-8061" }], { src: S + "concat-fields" });
E("fn_str.docs_contains", `SELECT VALUE { containsPrefix: CONTAINS(${AW}, "Adventure"), containsSuffix: CONTAINS(${AW}, "Works"), containsWrongCase: CONTAINS(${AW}, "adventure"), containsWrongCaseValidateCase: CONTAINS(${AW}, "adventure", false), containsWrongCaseIgnoreCase: CONTAINS(${AW}, "works", true), containsMismatch: CONTAINS(${AW}, "Contoso") }`,
  [{ containsPrefix: true, containsSuffix: true, containsWrongCase: false, containsWrongCaseValidateCase: false, containsWrongCaseIgnoreCase: true, containsMismatch: false }], { src: S + "contains" });
E("fn_str.docs_endswith", `SELECT VALUE { endsWithWrongSuffix: ENDSWITH(${AW}, "Adventure"), endsWithCorrectSuffix: ENDSWITH(${AW}, "Works"), endsWithSuffixWrongCase: ENDSWITH(${AW}, "works"), endsWithSuffixCaseInsensitive: ENDSWITH(${AW}, "works", true) }`,
  [{ endsWithWrongSuffix: false, endsWithCorrectSuffix: true, endsWithSuffixWrongCase: false, endsWithSuffixCaseInsensitive: true }], { src: S + "endswith" });
E("fn_str.docs_startswith", `SELECT VALUE { startsWithWrongPrefix: STARTSWITH(${AW}, "Works"), startsWithCorrectPrefix: STARTSWITH(${AW}, "Adventure"), startsWithPrefixWrongCase: STARTSWITH(${AW}, "adventure"), startsWithPrefixCaseInsensitive: STARTSWITH(${AW}, "adventure", true) }`,
  [{ startsWithWrongPrefix: false, startsWithCorrectPrefix: true, startsWithPrefixWrongCase: false, startsWithPrefixCaseInsensitive: true }], { src: S + "startswith" });
E("fn_str.docs_index_of", `SELECT VALUE { indexOfFirstLetter: INDEX_OF(${AW}, "A"), indexOfLastLetter: INDEX_OF(${AW}, "s"), indexOfPrefix: INDEX_OF(${AW}, "Adventure"), indexOfSuffix: INDEX_OF(${AW}, "Works"), indexOfSubstring: INDEX_OF(${AW}, "tureW"), indexOfNonMatch: INDEX_OF(${AW}, "Cosmos"), indexOfCustomStartMatch: INDEX_OF(${AW}, "Works", 5), indexOfCustomStartNoMatch: INDEX_OF(${AW}, "Adventure", 5), indexOfCaseSensitive: INDEX_OF(${AW}, "aD") }`,
  [{ indexOfFirstLetter: 0, indexOfLastLetter: 13, indexOfPrefix: 0, indexOfSuffix: 9, indexOfSubstring: 5, indexOfNonMatch: -1, indexOfCustomStartMatch: 9, indexOfCustomStartNoMatch: -1, indexOfCaseSensitive: -1 }], { src: S + "index-of" });
E("fn_str.docs_left", `SELECT VALUE { firstZero: LEFT(${AW}, 0), firstOne: LEFT(${AW}, 1), firstFive: LEFT(${AW}, 5), fullLength: LEFT(${AW}, LENGTH(${AW})), beyondMaxLength: LEFT(${AW}, 100) }`,
  [{ firstZero: "", firstOne: "A", firstFive: "Adven", fullLength: "AdventureWorks", beyondMaxLength: "AdventureWorks" }], { src: S + "left" });
E("fn_str.docs_right", `SELECT VALUE { lastZero: RIGHT(${AW}, 0), lastOne: RIGHT(${AW}, 1), lastFive: RIGHT(${AW}, 5), fullLength: RIGHT(${AW}, LENGTH(${AW})), beyondMaxLength: RIGHT(${AW}, 100) }`,
  [{ lastZero: "", lastOne: "s", lastFive: "Works", fullLength: "AdventureWorks", beyondMaxLength: "AdventureWorks" }], { src: S + "right" });
E("fn_str.docs_length", `SELECT VALUE { stringValue: LENGTH(${AW}), emptyString: LENGTH(""), nullValue: LENGTH(null), numberValue: LENGTH(0), arrayValue: LENGTH(["Adventure", "Works"]) }`, [{ stringValue: 14, emptyString: 0 }], { src: S + "length" });
E("fn_str.docs_lower", `SELECT VALUE { lowercase: LOWER("adventureworks"), uppercase: LOWER("ADVENTUREWORKS"), camelCase: LOWER("adventureWorks"), pascalCase: LOWER("AdventureWorks"), upperSnakeCase: LOWER("ADVENTURE_WORKS") }`,
  [{ lowercase: "adventureworks", uppercase: "adventureworks", camelCase: "adventureworks", pascalCase: "adventureworks", upperSnakeCase: "adventure_works" }], { src: S + "lower" });
E("fn_str.docs_upper", `SELECT VALUE { lowercase: UPPER("adventureworks"), uppercase: UPPER("ADVENTUREWORKS"), camelCase: UPPER("adventureWorks"), pascalCase: UPPER("AdventureWorks"), upperSnakeCase: UPPER("ADVENTURE_WORKS") }`,
  [{ lowercase: "ADVENTUREWORKS", uppercase: "ADVENTUREWORKS", camelCase: "ADVENTUREWORKS", pascalCase: "ADVENTUREWORKS", upperSnakeCase: "ADVENTURE_WORKS" }], { src: S + "upper" });
E("fn_str.docs_ltrim", `SELECT VALUE { whitespaceStart: LTRIM("  AdventureWorks"), whitespaceStartEnd: LTRIM("  AdventureWorks  "), whitespaceEnd: LTRIM("AdventureWorks  "), noWhitespace: LTRIM(${AW}), trimSuffix: LTRIM(${AW}, "Works"), trimPrefix: LTRIM(${AW}, "Adventure"), trimEntireTerm: LTRIM(${AW}, ${AW}), trimEmptyString: LTRIM(${AW}, "") }`,
  [{ whitespaceStart: "AdventureWorks", whitespaceStartEnd: "AdventureWorks  ", whitespaceEnd: "AdventureWorks  ", noWhitespace: "AdventureWorks", trimSuffix: "AdventureWorks", trimPrefix: "Works", trimEntireTerm: "", trimEmptyString: "AdventureWorks" }], { src: S + "ltrim" });
E("fn_str.docs_rtrim", `SELECT VALUE { whitespaceStart: RTRIM("  AdventureWorks"), whitespaceStartEnd: RTRIM("  AdventureWorks  "), whitespaceEnd: RTRIM("AdventureWorks  "), noWhitespace: RTRIM(${AW}), trimSuffix: RTRIM(${AW}, "Works"), trimPrefix: RTRIM(${AW}, "Adventure"), trimEntireTerm: RTRIM(${AW}, ${AW}), trimEmptyString: RTRIM(${AW}, "") }`,
  [{ whitespaceStart: "  AdventureWorks", whitespaceStartEnd: "  AdventureWorks", whitespaceEnd: "AdventureWorks", noWhitespace: "AdventureWorks", trimSuffix: "Adventure", trimPrefix: "AdventureWorks", trimEntireTerm: "", trimEmptyString: "AdventureWorks" }], { src: S + "rtrim" });
E("fn_str.docs_trim", `SELECT VALUE { trimPrefix: TRIM("   AdventureWorks"), trimSuffix: TRIM("AdventureWorks   "), trimWhitespace: TRIM("   AdventureWorks   "), trimWrongCharacter: TRIM("---AdventureWorks---"), trimUnderscores: TRIM("___AdventureWorks___", "_"), trimHyphens: TRIM("---AdventureWorks---", "-"), trimSubsetCharacters: TRIM("-- AdventureWorks --", "-"), trimMultipleCharacters: TRIM("-_-AdventureWorks-_-", "-_") }`,
  [{ trimPrefix: "AdventureWorks", trimSuffix: "AdventureWorks", trimWhitespace: "AdventureWorks", trimWrongCharacter: "---AdventureWorks---", trimUnderscores: "AdventureWorks", trimHyphens: "AdventureWorks", trimSubsetCharacters: " AdventureWorks ", trimMultipleCharacters: "AdventureWorks" }], { src: S + "trim" });
E("fn_str.docs_replace", `SELECT VALUE { replaceSubstring: REPLACE("AdventureWorksLT", "LT", "LT2") }`, [{ replaceSubstring: "AdventureWorksLT2" }], { src: S + "replace" });
E("fn_str.docs_replicate", `SELECT VALUE { catchPhrase: REPLICATE("Cosmic", 3) }`, [{ catchPhrase: "CosmicCosmicCosmic" }], { src: S + "replicate" });
E("fn_str.docs_reverse", `SELECT VALUE { reverseAdventureWorks: REVERSE(${AW}), reverseAdventureWorksBack: REVERSE("skroWerutnevdA"), doubleReverseAdventureWorks: REVERSE(REVERSE(${AW})) }`,
  [{ reverseAdventureWorks: "skroWerutnevdA", reverseAdventureWorksBack: "AdventureWorks", doubleReverseAdventureWorks: "AdventureWorks" }], { src: S + "reverse" });
E("fn_str.docs_substring", `SELECT VALUE { substringPrefix: SUBSTRING(${AW}, 0, 9), substringSuffix: SUBSTRING(${AW}, 9, 5), substringTotalLength: SUBSTRING(${AW}, 0, LENGTH(${AW})), substringEmptyString: SUBSTRING(${AW}, 0, -1) }`,
  [{ substringPrefix: "Adventure", substringSuffix: "Works", substringTotalLength: "AdventureWorks", substringEmptyString: "" }], { src: S + "substring" });
E("fn_str.docs_tostring", `SELECT VALUE { integerToString: ToString(125), floatToString: ToString(0.1234), booleanToString: ToString(false), arrayToString: ToString([ 1, 2, 3 ]), objectToString: ToString({ "department": "Bicycles" }), stringToString: ToString("Hello World"), undefinedToString: ToString(undefined) }`,
  [{ integerToString: "125", floatToString: "0.1234", booleanToString: "false", arrayToString: "[1,2,3]", objectToString: '{"department":"Bicycles"}', stringToString: "Hello World" }], { src: S + "tostring", note: "the page's NaN and Infinity members left out: atrest has no NaN/Infinity literals (JSON cannot hold them; docs/query.md)" });
E("fn_str.docs_stringtonumber", `SELECT VALUE { parseIntegerString: StringToNumber("100"), parseDecimalString: StringToNumber("3.14"), parseWithWhitespace: StringToNumber("   60   "), parseScientific: StringToNumber("-1.79769e+308"), parseInvalid: StringToNumber("Hello"), parseUndefined: StringToNumber(undefined), parseNull: StringToNumber(null) }`,
  [{ parseIntegerString: 100, parseDecimalString: 3.14, parseWithWhitespace: 60, parseScientific: -1.79769e308 }], { src: S + "stringtonumber", note: "the page's NaN and Infinity arguments left out (no such literals in atrest)" });
E("fn_str.docs_stringequals", `SELECT VALUE { compareSameCase: STRINGEQUALS(${AW}, ${AW}), compareDifferentCase: STRINGEQUALS(${AW}, "adventureworks"), compareIgnoreCase: STRINGEQUALS(${AW}, "adventureworks", true) }`,
  [{ compareSameCase: true, compareDifferentCase: false, compareIgnoreCase: true }], { src: S + "stringequals" });
E("fn_str.docs_stringtoarray", `SELECT VALUE { parseEmptyArray: StringToArray("[]"), parseArray: StringToArray('[ "coats", "gloves", "hats" ]'), complexArray: StringToArray('[ { "types": [ "coats", "gloves" ] }, [ "hats" ], 76, false, null ]'), nestedArray: StringToArray('[ [ "coats", "gloves" ], [ "hats" ] ]'), invalidArray: StringToArray("[ 'coats', 'gloves', 'hats' ]"), parseUndefined: StringToArray(undefined), parseNull: StringToArray(null) }`,
  [{ parseEmptyArray: [], parseArray: ["coats", "gloves", "hats"], complexArray: [{ types: ["coats", "gloves"] }, ["hats"], 76, false, null], nestedArray: [["coats", "gloves"], ["hats"]] }], { src: S + "stringtoarray" });
E("fn_str.docs_stringtoboolean", `SELECT VALUE { parseBooleanString: StringToBoolean("true"), parseWithPrefix: StringToBoolean("true  "), parseWithSuffix: StringToBoolean("  false"), parseWithWhitespace: StringToBoolean("  false  "), parseBoolean: StringToBoolean(true), parseUndefined: StringToBoolean(undefined), parseNull: StringToBoolean(null) }`,
  [{ parseBooleanString: true, parseWithPrefix: true, parseWithSuffix: false, parseWithWhitespace: false }], { src: S + "stringtoboolean" });
E("fn_str.docs_stringtonull", `SELECT VALUE { parseNullString: StringToNull("null"), parseWithPrefix: StringToNull("null  "), parseWithSuffix: StringToNull("  null"), parseWithWhitespace: StringToNull("  null  "), parseUppercase: StringToNull("NULL"), parseTitlecase: StringToNull("Null"), parseNull: StringToNull(null), parseUndefined: StringToNull(undefined) }`,
  [{ parseNullString: null, parseWithPrefix: null, parseWithSuffix: null, parseWithWhitespace: null }], { src: S + "stringtonull" });
E("fn_str.docs_stringtoobject", `SELECT VALUE { parseEmptyObject: StringToObject("{}"), parseObjectWithProperty: StringToObject('{"isAvailable": true}'), parseObjectNested: StringToObject('{"division": {"name": "Sales"}}'), parseObjectInvalidJson: StringToObject("{'price': 27.55}"), parseUndefined: StringToNumber(undefined), parseNull: StringToNumber(null) }`,
  [{ parseEmptyObject: {}, parseObjectWithProperty: { isAvailable: true }, parseObjectNested: { division: { name: "Sales" } } }], { src: S + "stringtoobject" });
E("fn_str.docs_regexmatch", `SELECT VALUE { noModifiers: RegexMatch("abcd", "ABC"), caseInsensitive: RegexMatch("abcd", "ABC", "i"), wildcardCharacter: RegexMatch("abcd", "ab.", ""), ignoreWhiteSpace: RegexMatch("abcd", "ab c", "x"), caseInsensitiveAndIgnoreWhiteSpace: RegexMatch("abcd", "aB c", "ix"), containNumberBetweenZeroAndNine: RegexMatch("03a", "[0-9]"), containPrefix: RegexMatch("salt3824908", "salt{1}"), containsFiveLetterWordStartingWithS: RegexMatch("shame", "s....", "i") }`,
  [{ noModifiers: false, caseInsensitive: true, wildcardCharacter: true, ignoreWhiteSpace: true, caseInsensitiveAndIgnoreWhiteSpace: true, containNumberBetweenZeroAndNine: true, containPrefix: true, containsFiveLetterWordStartingWithS: true }], { src: S + "regexmatch" });
E("fn_str.docs_regexmatch_field", `SELECT VALUE p.name FROM products p WHERE p.category = "winter-coats" AND RegexMatch(p.name, " coat{1}")`, ["Tecozow coat", "Bladnick coat"], { src: S + "regexmatch-field" });
E("fn_str.regexmatch_anchors", `SELECT VALUE [RegexMatch("abc", "^b"), RegexMatch("abc", "c$"), RegexMatch("a\\nb", "^b$", "m"), RegexMatch("a\\nb", "a.b", "s")]`, [[false, true, true, true]], { src: L + "regexmatch", note: "m and s modifiers" });
E("fn_str.regexmatch_data", `SELECT VALUE c.id FROM c WHERE c.kind = "s" AND RegexMatch(c.s, "^[a-z]+_[a-z]+$")`, ["s11"], { src: L + "regexmatch" });
E("fn_str.regexmatch_non_string", `SELECT VALUE RegexMatch(1, "1")`, [], { src: L + "regexmatch", note: "a non-string argument gives undefined" });
E("fn_str.concat_three", `SELECT VALUE CONCAT(c.id, "-", c.g) FROM c WHERE c.id = "t09"`, ["t09-y"], { src: L + "concat" });
E("fn_str.concat_non_string", `SELECT VALUE CONCAT("a", 1)`, [], { src: L + "concat", unsure: true, note: "assumed a non-string argument makes CONCAT undefined" });
E("fn_str.concat_operator", `SELECT VALUE "a" || "b" || "c"`, ["abc"], { unsure: true, note: "|| as string concatenation" });
E("fn_str.length_unicode", `SELECT c.id, LENGTH(c.s) AS n FROM c WHERE c.id IN ("s01", "s03", "s06", "s07", "s08", "s12")`, [
  { id: "s01", n: 4 },
  { id: "s03", n: 7 },
  { id: "s06", n: 10 },
  { id: "s07", n: 16 },
  { id: "s08", n: 0 },
  { id: "s12", n: 7 },
], { src: L + "length" });
E("fn_str.length_astral", `SELECT VALUE LENGTH(c.s) FROM c WHERE c.id = "s04"`, [12], { src: L + "length", unsure: true, note: "assumed LENGTH counts code points (the emoji is one); UTF-16 counting would give 13" });
E("fn_str.upper_data", `SELECT VALUE UPPER(c.s) FROM c WHERE c.id IN ("s06", "s10", "s11")`, ["BACK\\SLASH", "100%", "UNDER_SCORE"], { src: L + "upper" });
E("fn_str.lower_accent", `SELECT VALUE LOWER("CAFÉ")`, ["café"], { src: L + "lower", unsure: true, note: "non-ASCII case mapping assumed (invariant culture)" });
E("fn_str.upper_accent", `SELECT VALUE UPPER(c.s) FROM c WHERE c.id = "s01"`, ["CAFÉ"], { src: L + "upper", unsure: true, note: "non-ASCII case mapping assumed (invariant culture)" });
E("fn_str.contains_accent", `SELECT VALUE c.id FROM c WHERE c.kind = "s" AND CONTAINS(c.s, "é")`, ["s01", "s12"], { src: L + "contains" });
E("fn_str.contains_ignore_case_accent", `SELECT VALUE c.id FROM c WHERE c.kind = "s" AND CONTAINS(c.s, "café", true)`, ["s01", "s02"], { src: L + "contains", unsure: true, note: "case-insensitive match of é/É assumed" });
E("fn_str.contains_empty", `SELECT VALUE CONTAINS("abc", "")`, [true], { src: L + "contains" });
E("fn_str.startswith_data", `SELECT VALUE c.id FROM c WHERE STARTSWITH(c.s, "  ")`, ["s09"], { src: L + "startswith" });
E("fn_str.startswith_non_string", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND STARTSWITH(c.v, "1")`, ["t10"], { src: L + "startswith", note: "the number 1 is not a string" });
E("fn_str.endswith_data", `SELECT VALUE c.id FROM c WHERE c.kind = "t" AND ENDSWITH(c.id, "5")`, ["t05", "t15"], { src: L + "endswith" });
E("fn_str.index_of_cjk", `SELECT VALUE INDEX_OF("日本語テキスト", "テ")`, [3], { src: L + "index-of" });
E("fn_str.index_of_missing", `SELECT VALUE INDEX_OF(c.s, "x") FROM c WHERE c.id = "s01"`, [-1], { src: L + "index-of" });
E("fn_str.substring_cjk", `SELECT VALUE SUBSTRING("日本語テキスト", 3, 2)`, ["テキ"], { src: L + "substring" });
E("fn_str.substring_past_end", `SELECT VALUE SUBSTRING("abc", 1, 100)`, ["bc"], { src: L + "substring" });
E("fn_str.left_accent", `SELECT VALUE LEFT(c.s, 3) FROM c WHERE c.id = "s12"`, ["Ünï"], { src: L + "left" });
E("fn_str.right_cjk", `SELECT VALUE RIGHT(c.s, 4) FROM c WHERE c.id = "s03"`, ["テキスト"], { src: L + "right" });
E("fn_str.reverse_accent", `SELECT VALUE REVERSE("café")`, ["éfac"], { src: L + "reverse" });
E("fn_str.trim_data", `SELECT VALUE [TRIM(c.s), LTRIM(c.s), RTRIM(c.s)] FROM c WHERE c.id = "s09"`, [["padded", "padded  ", "  padded"]], { src: L + "trim" });
E("fn_str.replace_all", `SELECT VALUE REPLACE("a-b-c", "-", "+")`, ["a+b+c"], { src: L + "replace", note: "every occurrence" });
E("fn_str.replace_data", `SELECT VALUE REPLACE(c.s, "_", " ") FROM c WHERE c.id = "s11"`, ["under score"], { src: L + "replace" });
E("fn_str.replicate_zero", `SELECT VALUE REPLICATE("x", 0)`, [""], { src: L + "replicate" });
E("fn_str.tostring_data", `SELECT VALUE ToString(c.v) FROM c WHERE c.kind = "t" AND c.i IN (2, 3, 5, 6, 14, 15)`, ["null", "false", "1", "1.5", "[1,2]", '{"a":1}'], { src: S + "tostring" });
E("fn_str.tostring_undefined", `SELECT VALUE ToString(c.v) FROM c WHERE c.id = "t01"`, [], { src: S + "tostring" });
E("fn_str.stringtonumber_data", `SELECT VALUE StringToNumber(c.v) FROM c WHERE c.kind = "t" AND IS_STRING(c.v)`, [1], { src: L + "stringtonumber", note: "only \"1\" parses" });
E(
  "fn_str.stringsplit_doc",
  `SELECT VALUE { seperateOnLetter: STRINGSPLIT("Handlebar", "e"), seperateOnSymbol: STRINGSPLIT("CARBON_STEEL_BIKE_WHEEL", "_"), seperateOnWhitespace: STRINGSPLIT("Road Bike", " "), seperateOnPhrase: STRINGSPLIT("xenmoun mountain bike", "moun"), undefinedSeperator: STRINGSPLIT("AluminumBikeFrame", undefined), emptySeparatorString: STRINGSPLIT("Helmet", ""), emptySourceString: STRINGSPLIT("", "") }`,
  [{ seperateOnLetter: ["Handl", "bar"], seperateOnSymbol: ["CARBON", "STEEL", "BIKE", "WHEEL"], seperateOnWhitespace: ["Road", "Bike"], seperateOnPhrase: ["xen", " ", "tain bike"], emptySeparatorString: ["Helmet"], emptySourceString: [""] }],
  { src: "https://learn.microsoft.com/cosmos-db/query/stringsplit" },
);
E(
  "fn_str.stringjoin_doc",
  `SELECT VALUE { joinUsingSpaces: STRINGJOIN(["Iropa", "Mountain", "Bike"], " "), joinUsingEmptyString: STRINGJOIN(["Iropa", "Mountain", "Bike"], ""), joinUsingUndefined: STRINGJOIN(["Iropa", "Mountain", "Bike"], undefined), joinUsingCharacter: STRINGJOIN(["6", "7", "4", "3"], "A"), joinUsingPhrase: STRINGJOIN(["Adventure", "LT"], "Works") }`,
  [{ joinUsingSpaces: "Iropa Mountain Bike", joinUsingEmptyString: "IropaMountainBike", joinUsingCharacter: "6A7A4A3", joinUsingPhrase: "AdventureWorksLT" }],
  { src: "https://learn.microsoft.com/cosmos-db/query/stringjoin" },
);
E("fn_str.stringsplit_data", `SELECT VALUE StringSplit(c.id, "0") FROM c WHERE c.id = "t01"`, [["t", "1"]]);
E("fn_arr.setdifference_doc", "SELECT VALUE { \"case1\": SETDIFFERENCE([1, 2, 3], [1, 2, 6, 7]), \"case2\": SETDIFFERENCE([1, 2, 6, 7], [1, 2, 3]), \"case3\": SETDIFFERENCE([1, 2, 3, 4], [1, 2, 3, 4, 5, 6]), \"case4\": SETDIFFERENCE([], [1, 2, 3]), \"case5\": SETDIFFERENCE([1, 2, 3], []), \"case6\": SETDIFFERENCE([1, 1, 1, 1], [2, 3, 4]) }", [{"case1": [3], "case2": [6, 7], "case3": [], "case4": [], "case5": [1, 2, 3], "case6": [1]}], { src: "https://learn.microsoft.com/cosmos-db/query/setdifference" });
E("fn_arr.setequal_doc", "SELECT VALUE { \"case1\": SETEQUAL([1, 2, 3], [1, 2, 3]), \"case2\": SETEQUAL([1, 2, 3], [3, 2, 1]), \"case3\": SETEQUAL([1, 2, 3, 3], [1, 2, 2, 3, 1, 2]), \"case4\": SETEQUAL([], [1, 2, 3]), \"case5\": SETEQUAL([1, true, 'abc'], [true, 1, 'abc']), \"case6\": SETEQUAL([1, 1, 1, 1], [2, 3, 4]) }", [{"case1": true, "case2": true, "case3": true, "case4": false, "case5": true, "case6": false}], { src: "https://learn.microsoft.com/cosmos-db/query/setequal" });
E("fn_arr.array_max_doc", "SELECT VALUE { \"case1\": ARRAY_MAX([1, 2, 3, 4]), \"case2\": ARRAY_MAX(['abc', 'ABC', 'aBc', 'AbC']), \"case3\": ARRAY_MAX([true, false]), \"case4\": ARRAY_MAX([null, null]), \"case5\": ARRAY_MAX([12, 'abc', true, false, null, undefined]) }", [{"case1": 4, "case2": "abc", "case3": true, "case4": null, "case5": "abc"}], { src: "https://learn.microsoft.com/cosmos-db/query/array-max" });
E("fn_arr.array_min_doc", "SELECT VALUE { \"case1\": ARRAY_MIN([1, 2, 3, 4]), \"case2\": ARRAY_MIN(['abc', 'ABC', 'aBc', 'AbC']), \"case3\": ARRAY_MIN([true, false]), \"case4\": ARRAY_MIN([null, null]), \"case5\": ARRAY_MIN([12, 'abc', true, false, null, undefined]) }", [{"case1": 1, "case2": "ABC", "case3": false, "case4": null, "case5": null}], { src: "https://learn.microsoft.com/cosmos-db/query/array-min" });
E("fn_arr.array_sum_doc", "SELECT VALUE { \"case1\": ARRAY_SUM([1, 2, 3, 4]), \"case2\": ARRAY_SUM([1, 2, 3, 4, undefined]), \"case3\": ARRAY_SUM(['abc', 'ABC', 'aBc', 'AbC']), \"case4\": ARRAY_SUM([12, 'abc', true, false, null, undefined]) }", [{"case1": 10, "case2": 10}], { src: "https://learn.microsoft.com/cosmos-db/query/array-sum" });
E("fn_arr.array_avg_doc", "SELECT VALUE { \"case1\": ARRAY_AVG([1, 2, 3, 4]), \"case2\": ARRAY_AVG([1.0, 2.0, 3.3, 4.7]), \"case3\": ARRAY_AVG([1, -2.7, 3, -4, undefined]), \"case4\": ARRAY_AVG(['abc', 'ABC', 'aBc', 'AbC']), \"case5\": ARRAY_AVG([12, 'abc', true, false, null, undefined]) }", [{"case1": 2.5, "case2": 2.75, "case3": -0.675}], { src: "https://learn.microsoft.com/cosmos-db/query/array-avg" });
E("fn_arr.array_median_doc", "SELECT VALUE { \"case1\": ARRAY_MEDIAN([1, 2, 3, 4]), \"case2\": ARRAY_MEDIAN([1.0, 2.0, 3.3, 4.7, 7.8]), \"case3\": ARRAY_MEDIAN([1, -2.7, 3, -4, undefined]), \"case4\": ARRAY_MEDIAN(['abc', 'ABC', 'aBc', 'AbC']), \"case5\": ARRAY_MEDIAN([12, 'abc', true, false, null, undefined]) }", [{"case1": 2.5, "case2": 3.3, "case3": -0.8500000000000001}], { src: "https://learn.microsoft.com/cosmos-db/query/array-median" });
E("fn_str.contains_all_ci_doc", "SELECT VALUE { \"case1\": CONTAINS_ALL_CI(\"Have a nice day!\", \"have\", \"nice\", \"day!\"), \"case2\": CONTAINS_ALL_CI(\"Have a nice day!\", \"HAVE\", \"NICE\", \"DAY!\"), \"case3\": CONTAINS_ALL_CI(\"Have a nice day!\", \"had\", \"nice\", \"day!\"), \"case4\": CONTAINS_ALL_CI(\"Have a nice day!\", undefined, \"nice\", \"day!\"), \"case5\": CONTAINS_ALL_CI(\"Have a nice day!\", undefined, \"had\") }", [{"case1": true, "case2": true, "case3": false, "case5": false}], { src: "https://learn.microsoft.com/cosmos-db/query/contains-all-ci" });
E("fn_str.contains_all_cs_doc", "SELECT VALUE { \"case1\": CONTAINS_ALL_CS(\"Have a nice day!\", \"have\", \"nice\", \"day!\"), \"case2\": CONTAINS_ALL_CS(\"Have a nice day!\", \"HAVE\", \"NICE\", \"DAY!\"), \"case3\": CONTAINS_ALL_CS(\"Have a nice day!\", \"had\", \"nice\", \"day!\"), \"case4\": CONTAINS_ALL_CS(\"Have a nice day!\", undefined, \"nice\", \"day!\"), \"case5\": CONTAINS_ALL_CS(\"Have a nice day!\", undefined, \"had\") }", [{"case1": false, "case2": false, "case3": false, "case5": false}], { src: "https://learn.microsoft.com/cosmos-db/query/contains-all-cs" });
E("fn_str.contains_any_ci_doc", "SELECT VALUE { \"case1\": CONTAINS_ANY_CI(\"Have a nice day!\", \"have\", \"nice\", \"day!\"), \"case2\": CONTAINS_ANY_CI(\"Have a nice day!\", \"HAVE\", \"NICE\", \"DAY!\"), \"case3\": CONTAINS_ANY_CI(\"Have a nice day!\", \"had\", \"nice\", \"day!\"), \"case4\": CONTAINS_ANY_CI(\"Have a nice day!\", undefined, \"nice\", \"day!\"), \"case5\": CONTAINS_ANY_CI(\"Have a nice day!\", undefined, \"had\") }", [{"case1": true, "case2": true, "case3": true, "case4": true}], { src: "https://learn.microsoft.com/cosmos-db/query/contains-any-ci" });
E("fn_str.contains_any_cs_doc", "SELECT VALUE { \"case1\": CONTAINS_ANY_CS(\"Have a nice day!\", \"have\", \"nice\", \"day!\"), \"case2\": CONTAINS_ANY_CS(\"Have a nice day!\", \"HAVE\", \"NICE\", \"DAY!\"), \"case3\": CONTAINS_ANY_CS(\"Have a nice day!\", \"had\", \"nice\", \"day!\"), \"case4\": CONTAINS_ANY_CS(\"Have a nice day!\", undefined, \"nice\", \"day!\"), \"case5\": CONTAINS_ANY_CS(\"Have a nice day!\", undefined, \"had\") }", [{"case1": true, "case2": false, "case3": true, "case4": true}], { src: "https://learn.microsoft.com/cosmos-db/query/contains-any-cs" });
E("fn_date.day_doc", "SELECT VALUE { \"case1\": DAY(\"2024-01-10\"), \"case2\": DAY(\"2000-12-12T10:00:00\"), \"case3\": DAY(\"1989-03-03T12:12:12.1234567Z\") }", [{"case1": 10, "case2": 12, "case3": 3}], { src: "https://learn.microsoft.com/cosmos-db/query/day" });
E("fn_date.month_doc", "SELECT VALUE { \"case1\": MONTH(\"2024-01-10\"), \"case2\": MONTH(\"2000-12-12T10:00:00\"), \"case3\": MONTH(\"1989-03-03T12:12:12.1234567Z\") }", [{"case1": 1, "case2": 12, "case3": 3}], { src: "https://learn.microsoft.com/cosmos-db/query/month" });
E("fn_date.year_doc", "SELECT VALUE { \"case1\": YEAR(\"2000-10-10\"), \"case2\": YEAR(\"2024-01-10T14:15:20\"), \"case3\": YEAR(\"1989-03-03T12:12:12.1234567Z\") }", [{"case1": 2000, "case2": 2024, "case3": 1989}], { src: "https://learn.microsoft.com/cosmos-db/query/year" });
E("fn_date.now_ago", "SELECT VALUE [NOW() = GetCurrentDateTime(), NOW('yyyy', 1) = DateTimeAdd('yyyy', 1, GetCurrentDateTime()), AGO('ss', 30) = DateTimeAdd('ss', -30, GetCurrentDateTime())]", [[true, true, true]], { src: "https://learn.microsoft.com/cosmos-db/query/now", note: "NOW/AGO against DateTimeAdd of the same (fixed) current time" });
E("fn_date.ago_bad_part", "SELECT VALUE IS_DEFINED(AGO('nope', 1))", [false], { src: "https://learn.microsoft.com/cosmos-db/query/ago" });
E("fn_str.contains_all_not_string", "SELECT VALUE CONTAINS_ALL_CS(1, 'a')", [], { src: "https://learn.microsoft.com/cosmos-db/query/contains-all-cs" });
E("fn_date.datetimeformat_doc", "SELECT VALUE { \"case1\": DATETIMEFORMAT(\"2024-10-10 14:40:20\", \"yyyyMMdd\"), \"case2\": DATETIMEFORMAT(\"2024-10-10 14:40:20\", \"yyyy-MM-dd [HH:mm:ss]\"), \"case3\": DATETIMEFORMAT(\"2024-10-10 14:40:20\", \"To\\\\da\\\\y i\\\\s: yyyy-MM-ddTHH:mm:ss.fff\"), \"case4\": DATETIMEFORMAT(\"2024-10-10 14:40:20\", \"To\\\\da\\\\y i\\\\s: yyyy-MM-ddTHH:mm:ss.FFF\") }", [{"case1": "20241010", "case2": "2024-10-10 [14:40:20]", "case3": "Today is: 2024-10-10T14:40:20.000", "case4": "Today is: 2024-10-10T14:40:20."}], { src: "https://learn.microsoft.com/cosmos-db/query/datetimeformat" });
E("fn_date.datetimeformat_specifiers", "SELECT VALUE DateTimeFormat('2024-10-06T09:05:03.1234567Z', \"ddd dddd MMM MMMM d M h:m:s tt fffffff FF 'yyyy' K\")", ["Sun Sunday Oct October 6 10 9:5:3 AM 1234567 12 yyyy Z"], { note: ".NET custom date and time format specifiers (invariant culture), which the documented example follows" });
E("fn_date.datetimeformat_bad", "SELECT VALUE [IS_DEFINED(DateTimeFormat('2024-10-06', 'ffffffff')), IS_DEFINED(DateTimeFormat('nope', 'yyyy'))]", [[false, false]], { note: "more than seven f, or no date-time: undefined" });
E("fn_str.string_of_non_string", `SELECT VALUE [UPPER(1), LENGTH(true), LOWER(null)]`, [[]], { unsure: true, note: "each is undefined; assumed an array holds no undefined element" });

// ---- math ----
const M = { approx: true };
E("fn_math.docs_abs", `SELECT VALUE { absoluteNegativeOne: ABS(-1), absoluteZero: ABS(0), absoluteOne: ABS(1) }`, [{ absoluteNegativeOne: 1, absoluteZero: 0, absoluteOne: 1 }], { src: S + "absolute-value" });
E("fn_math.docs_acos", `SELECT VALUE { arccosine: ACOS(-1) }`, [{ arccosine: 3.141592653589793 }], { ...M, src: S + "arccosine" });
E("fn_math.docs_asin_sample", `SELECT VALUE { arcsine: ACOS(-1) }`, [{ arcsine: 3.141592653589793 }], { ...M, src: S + "asin (the sample calls ACOS)" });
E("fn_math.asin", `SELECT VALUE ASIN(1)`, [1.5707963267948966], { ...M, src: L + "asin" });
E("fn_math.docs_atan", `SELECT VALUE { arctangent: ATAN(-45.01) }`, [{ arctangent: -1.5485826962062663 }], { ...M, src: S + "atan" });
E("fn_math.docs_atn2", `SELECT VALUE { arctangentInRadians: ATN2(35.175643, 129.44) }`, [{ arctangentInRadians: 0.265344532064832 }], { ...M, src: S + "atn2" });
E("fn_math.docs_ceiling", `SELECT VALUE { ceilingPositiveInteger: CEILING(123.45), ceilingNegativeInteger: CEILING(-45.72), ceilingZero: CEILING(0) }`, [{ ceilingPositiveInteger: 124, ceilingNegativeInteger: -45, ceilingZero: 0 }], { src: S + "ceiling" });
E("fn_math.docs_cos", `SELECT VALUE { cosine: COS(14.78) }`, [{ cosine: -0.5994654261946543 }], { ...M, src: S + "cos" });
E("fn_math.docs_cot", `SELECT VALUE { cotangent: COT(124.1332) }`, [{ cotangent: -0.040311998371148884 }], { ...M, src: S + "cot" });
E("fn_math.docs_degrees", `SELECT VALUE { radiansHalfPiToDegrees: DEGREES(1.5707963267948966), radiansPiToDegrees: DEGREES(3.141592653589793), radiansOneAndHalfPiToDegrees: DEGREES(4.71238898038469), radiansDoublePiToDegrees: DEGREES(6.283185307179586) }`,
  [{ radiansHalfPiToDegrees: 90, radiansPiToDegrees: 180, radiansOneAndHalfPiToDegrees: 270, radiansDoublePiToDegrees: 360 }], { ...M, src: S + "degrees" });
E("fn_math.docs_exp", `SELECT VALUE { expontentialZero: EXP(0), exponentialTen: EXP(10), exponentialTwenty: EXP(20) }`, [{ expontentialZero: 1, exponentialTen: 22026.465794806718, exponentialTwenty: 485165195.4097903 }], { ...M, src: S + "exp" });
E("fn_math.docs_floor", `SELECT VALUE { floorPostiveNumber: FLOOR(62.6), floorNegativeNumber: FLOOR(-145.12), floorSmallNumber: FLOOR(0.2989), floorZero: FLOOR(0.0), floorNull: FLOOR(null) }`, [{ floorPostiveNumber: 62, floorNegativeNumber: -146, floorSmallNumber: 0, floorZero: 0 }], { src: S + "floor" });
E("fn_math.docs_log", `SELECT VALUE { logFive: LOG(5), logTwoBaseTen: LOG(2, 10) }`, [{ logFive: 1.6094379124341003, logTwoBaseTen: 0.3010299956639812 }], { ...M, src: S + "log-base" });
E("fn_math.docs_log10", `SELECT VALUE { logFiveBaseTen: LOG10(5), logTwoBaseTen: LOG10(2), logHundredBaseTen: LOG10(100) }`, [{ logFiveBaseTen: 0.6989700043360189, logTwoBaseTen: 0.3010299956639812, logHundredBaseTen: 2 }], { ...M, src: S + "log10" });
E("fn_math.docs_pi", `SELECT VALUE PI()`, [3.141592653589793], { ...M, src: S + "pi" });
E("fn_math.docs_power", `SELECT VALUE { oneFirstPower: POWER(1, 1), twoSquared: POWER(2, 2), threeCubed: POWER(3, 3), fourFourthPower: POWER(4, 4), fiveFithPower: POWER(5, 5), zeroSquared: POWER(0, 2), nullCubed: POWER(null, 3), twoNullPower: POWER(2, null) }`,
  [{ oneFirstPower: 1, twoSquared: 4, threeCubed: 27, fourFourthPower: 256, fiveFithPower: 3125, zeroSquared: 0 }], { src: S + "power" });
E("fn_math.docs_radians", `SELECT VALUE { degrees90ToRadians: RADIANS(90), degrees180ToRadians: RADIANS(180), degrees270ToRadians: RADIANS(270), degrees360ToRadians: RADIANS(360) }`,
  [{ degrees90ToRadians: 1.5707963267948966, degrees180ToRadians: 3.141592653589793, degrees270ToRadians: 4.71238898038469, degrees360ToRadians: 6.283185307179586 }], { ...M, src: S + "radians" });
E("fn_math.docs_round", `SELECT VALUE { roundTwoPointFour: ROUND(2.4), roundTwoPointSix: ROUND(2.6), roundTwoPointFive: ROUND(2.5), roundNegativeTwoPointFour: ROUND(-2.4), roundNegativeTwoPointSix: ROUND(-2.6) }`,
  [{ roundTwoPointFour: 2, roundTwoPointSix: 3, roundTwoPointFive: 3, roundNegativeTwoPointFour: -2, roundNegativeTwoPointSix: -3 }], { src: S + "round" });
E("fn_math.round_negative_half", `SELECT VALUE ROUND(-2.5)`, [-3], { src: L + "round", unsure: true, note: "assumed midpoints round away from zero (ROUND(2.5) = 3 in the sample)" });
E("fn_math.docs_sign", `SELECT VALUE { signNegativeTwo: SIGN(-2), signNegativeOne: SIGN(-1), signZero: SIGN(0), signOne: SIGN(1), signTwo: SIGN(2) }`, [{ signNegativeTwo: -1, signNegativeOne: -1, signZero: 0, signOne: 1, signTwo: 1 }], { src: S + "sign" });
E("fn_math.docs_sin", `SELECT VALUE { sine: SIN(45.175643) }`, [{ sine: 0.929607286611012 }], { ...M, src: S + "sin" });
E("fn_math.docs_sqrt", `SELECT VALUE { sqrtZero: SQRT(0), sqrtOne: SQRT(1), sqrtFour: SQRT(4), sqrtPrime: SQRT(17), sqrtTwentyFive: SQRT(25) }`, [{ sqrtZero: 0, sqrtOne: 1, sqrtFour: 2, sqrtPrime: 4.123105625617661, sqrtTwentyFive: 5 }], { ...M, src: S + "sqrt" });
E("fn_math.docs_square", `SELECT VALUE { squareZero: SQUARE(0), squareOne: SQUARE(1), squareTwo: SQUARE(2), squareThree: SQUARE(3), squareNull: SQUARE(null) }`, [{ squareZero: 0, squareOne: 1, squareTwo: 4, squareThree: 9 }], { src: S + "square" });
E("fn_math.docs_tan", `SELECT VALUE { tangentSquareRootPi: TAN(PI()/2), tangentArbitraryNumber: TAN(124.1332) }`, [{ tangentSquareRootPi: 16331239353195370, tangentArbitraryNumber: -24.80651023035602 }], { ...M, src: S + "tan" });
E("fn_math.docs_trunc", `SELECT VALUE { truncateFloatingPoint: TRUNC(2.37), truncateNegative: TRUNC(-2.78), truncateInteger: TRUNC(2), truncateSmallNumber: TRUNC(0.0000714), truncatePi: TRUNC(PI()) }`, [{ truncateFloatingPoint: 2, truncateNegative: -2, truncateInteger: 2, truncateSmallNumber: 0, truncatePi: 3 }], { src: S + "trunc" });
E("fn_math.abs_data", `SELECT VALUE ABS(c.v) FROM c WHERE c.kind = "t"`, [1, 1.5, 2, 0, 1e20, 10], { src: L + "abs", note: "non-numbers give undefined: no row" });
E("fn_math.floor_ceiling_negative", `SELECT VALUE [FLOOR(c.neg), CEILING(c.neg)] FROM c WHERE c.id IN ("m01", "m02")`, [[-1, -0], [-1, -0]], { src: L + "floor", note: "CEILING(-0.5) is -0, the same JSON number as 0" });
E("fn_math.power_fraction", `SELECT VALUE POWER(4, 0.5)`, [2], { src: L + "power" });
E("fn_math.sqrt_data", `SELECT VALUE SQRT(c.n) FROM c WHERE c.id IN ("t04", "t09", "t16")`, [2, 3, 4], { src: L + "sqrt" });
E("fn_math.log_e", `SELECT VALUE LOG(EXP(1))`, [1], { ...M, src: L + "log" });
E("fn_math.trig_identity", `SELECT VALUE [SIN(0), COS(0), TAN(0), ATAN(1) * 4]`, [[0, 1, 0, 3.141592653589793]], { ...M, src: L + "sin" });
E("fn_math.number_bin", `SELECT VALUE { roundToNegativeHundreds: NumberBin(37.752, -100), roundToTens: NumberBin(37.752, 10), roundToOnes: NumberBin(37.752, 1), roundToZeroes: NumberBin(37.752, 0), roundToOneTenths: NumberBin(37.752, 0.1), roundToOneHundreds: NumberBin(37.752, 0.01) }`,
  [{ roundToNegativeHundreds: 100, roundToTens: 30, roundToOnes: 37, roundToOneTenths: 37.7, roundToOneHundreds: 37.75 }], { ...M, src: S + "numberbin", unsure: true, note: "novalidate sample: the -100 and 0 bins look doubtful" });
E("fn_math.number_bin_field", `SELECT p.name, NumberBin(p.price, 0.01) AS price FROM products p WHERE p.category = "small-bags" AND p.price > 60`, [{ name: "Icento pack", price: 62.21 }], { ...M, src: S + "numberbin-field" });
E("fn_math.int_add", `SELECT VALUE { addNumber: IntAdd(20, 10), addZero: IntAdd(20, 0), addDecimal: IntAdd(20, 0.10) }`, [{ addNumber: 30, addZero: 20 }], { src: S + "intadd" });
E("fn_math.int_div", `SELECT VALUE { divide: IntDiv(10, 2), negativeResult: IntDiv(10, -2), positiveResult: IntDiv(-10, -2), resultOne: IntDiv(10, 10), divideZero: IntDiv(10, 0), divideDecimal: IntDiv(10, 0.1) }`, [{ divide: 5, negativeResult: -5, positiveResult: 5, resultOne: 1 }], { src: S + "intdiv" });
E("fn_math.int_mod", `SELECT VALUE { mod: IntMod(12, 5), positiveResult: IntMod(12, -5), negativeResult: IntMod(-12, -5), resultZero: IntMod(15, 5), modZero: IntMod(12, 0), modDecimal: IntMod(12, 0.2) }`, [{ mod: 2, positiveResult: 2, negativeResult: -2, resultZero: 0 }], { src: S + "intmod" });
E("fn_math.int_mul", `SELECT VALUE { multiply: IntMul(5, 2), negativeResult: IntMul(5, -2), positiveResult: IntMul(-5, -2), square: IntMul(5, 5), cube: IntMul(5, IntMul(5, 5)), multiplyZero: IntMul(5, 0), multiplyDecimal: IntMul(5, 0.5) }`, [{ multiply: 10, negativeResult: -10, positiveResult: 10, square: 25, cube: 125, multiplyZero: 0 }], { src: S + "intmul" });
E("fn_math.int_sub", `SELECT VALUE { negativeResult: IntSub(25, 50), positiveResult: IntSub(25, 15), subtractSameNumber: IntSub(25, 25), subtractZero: IntSub(25, 0), subtractDecimal: IntSub(25, 2.5) }`, [{ negativeResult: -25, positiveResult: 10, subtractSameNumber: 0, subtractZero: 25 }], { src: S + "intsub" });
E("fn_math.int_bit_and", `SELECT VALUE { compareNumbers: IntBitAnd(15, 25), compareZero: IntBitAnd(15, 0), compareSameNumber: IntBitAnd(15, 15), compareDecimal: IntBitAnd(15, 1.5) }`, [{ compareNumbers: 9, compareZero: 0, compareSameNumber: 15 }], { src: S + "intbitand", unsure: true, note: "novalidate sample" });
E("fn_math.int_bit_or_xor_not", `SELECT VALUE { inclusiveOr: IntBitOr(56, 100), exclusiveOr: IntBitXor(56, 100), complementNumber: IntBitNot(65), shiftLeft: IntBitLeftShift(16, 4), shiftRight: IntBitRightShift(16, 4), decimal: IntBitOr(56, 0.1) }`, [{ inclusiveOr: 124, exclusiveOr: 92, complementNumber: -66, shiftLeft: 256, shiftRight: 1 }], {
  src: S + "intbitor, intbitxor, intbitnot, intbitleftshift, intbitrightshift",
  unsure: true,
  note: "novalidate samples",
});

// ---- operators (constant expressions) ----
const OPS = L + "bitwise-operators";
E("ops.docs_bitwise", `SELECT (100 >> 2) AS rightShift, (100 << 2) AS leftShift, (100 >>> 0) AS zeroFillRightShift, (100 & 1000) AS logicalAnd, (100 | 1000) AS logicalOr, (100 ^ 1000) AS logicalExclusiveOr`,
  [{ rightShift: 25, leftShift: 400, zeroFillRightShift: 100, logicalAnd: 96, logicalOr: 1004, logicalExclusiveOr: 908 }], { src: OPS });
E("ops.bitwise_32bit", `SELECT VALUE [~5, -16 >> 2, -16 >>> 28, 1 << 31, 4294967297 | 0]`, [[-6, -4, 15, -2147483648, 1]], { src: OPS, note: "JavaScript semantics: 32-bit signed integers" });
E("ops.precedence", `SELECT VALUE [2 + 3 * 4, (2 + 3) * 4, 10 - 2 - 3, 2 * 3 % 4, -2 * -3, 7 % 3, -7 % 3, 1 / 4, 8 / 2 / 2]`, [[14, 20, 5, 2, 6, 1, -1, 0.25, 2]]);
E("ops.arith_non_number_undefined", `SELECT VALUE { a: 1 + "a", b: true * 2, c: null + 1, d: [1] + 1, e: 2 }`, [{ e: 2 }], { note: "arithmetic on non-numbers is undefined" });
E("ops.value_arith_undefined", `SELECT VALUE 1 + "1"`, []);
E("ops.equality_across_types", `SELECT VALUE { a: 1 = "1", b: null = false, c: 0 = false, d: "" = null, e: [] = {}, f: 1 = 1 }`, [{ f: true }], { src: EQ });
E("ops.equality_same_types", `SELECT VALUE [null = null, true = true, 1 = 1.0, "a" = "a", [1, [2]] = [1, [2]], {a: 1, b: 2} = {b: 2, a: 1}, {a: 1} = {a: 2}]`, [[true, true, true, true, true, true, false]], {
  src: EQ,
  note: "objects compare by members, whatever their order",
});
E("ops.comparison_same_types", `SELECT VALUE [1 < 2, 2 <= 2, "a" < "b", "B" < "a", "" < "a", false < true, 1.5 > 1, -1 < 0]`, [[true, true, true, true, true, true, true, true]], { src: EQ });
E("ops.comparison_across_types", `SELECT VALUE { a: 1 < "2", b: null < 1, c: false < 0, d: [1] < [2], e: {} < {}, f: 1 < 2 }`, [{ f: true }], { src: EQ });
E("ops.not_equal", `SELECT VALUE [1 != 2, 1 <> 1, "a" != "a"]`, [[true, false, false]], { src: EQ });
E("ops.logic_truth_tables", `SELECT VALUE { a: true OR undefined, b: false OR undefined, c: undefined OR undefined, d: true AND undefined, e: false AND undefined, f: NOT undefined, g: NOT false, h: true AND true, i: false OR false }`,
  [{ a: true, e: false, g: true, h: true, i: false }], { src: L + "logical-operators" });
E("ops.logic_non_boolean", `SELECT VALUE { a: false AND "x", b: true OR 1, c: true AND "x", d: NOT 1 }`, [{ a: false, b: true }], { src: L + "logical-operators", unsure: true, note: "assumed a non-boolean operand behaves like undefined" });
E("ops.logic_precedence", `SELECT VALUE [true OR false AND false, NOT false AND false, NOT (false AND false)]`, [[true, false, true]], { src: L + "logical-operators#operator-precedence" });
E("ops.ternary", `SELECT VALUE [1 < 2 ? "y" : "n", 1 > 2 ? "y" : "n", true ? false ? 1 : 2 : 3]`, [["y", "n", 2]], { src: L + "ternary-coalesce-operators" });
E("ops.ternary_non_boolean", `SELECT VALUE ("x" ? 1 : 2)`, [2], { src: S + "iif", unsure: true, note: "assumed like IIF: anything but true takes the false branch" });
E("ops.coalesce", `SELECT VALUE [{}.missing ?? "d", null ?? "d", undefined ?? undefined ?? 3, 0 ?? 1, false ?? true]`, [["d", null, 3, 0, false]], { src: L + "ternary-coalesce-operators" });
E("ops.in_constants", `SELECT VALUE [2 IN (1, 2, 3), 4 IN (1, 2, 3), "b" IN ("a", "b"), 2 NOT IN (1, 3)]`, [[true, false, true, true]], { src: L + "keywords#in" });
E("ops.in_cross_type", `SELECT VALUE { a: "2" IN (1, 2) }`, [{ a: false }], { src: L + "keywords#in", unsure: true, note: "assumed IN gives false (not undefined) when nothing equals" });
E("ops.between_constants", `SELECT VALUE [5 BETWEEN 1 AND 10, 5 BETWEEN 10 AND 1, "b" BETWEEN "a" AND "c", 1 BETWEEN 1 AND 1]`, [[true, false, true, true]], { src: L + "keywords#between" });
E("ops.like_constants", `SELECT VALUE ["abc" LIKE "a_c", "abc" LIKE "A%", "a%c" LIKE "a^%c" ESCAPE "^", "abc" LIKE "%", "" LIKE "_", "ab" LIKE "a%b%"]`, [[true, false, true, true, false, true]], { src: L + "keywords#like" });
E("ops.docs_like_literal_brackets", `SELECT VALUE ["20-30%" LIKE "20-30[%]", "_n" LIKE "[_]n", "[" LIKE "[ [ ]", "]" LIKE "]"]`, [[true, true, true, true]], { src: L + "keywords#like", unsure: true, note: "\"[ [ ]\" parsed as \"[\" per the page's table; the spaces are read as set members" });
E("ops.member_of_literal", `SELECT VALUE [{a: {b: 1}}.a.b, [10, 20][1], {"x y": 2}["x y"]]`, [[1, 20, 2]]);
E("ops.unary_minus_precedence", `SELECT VALUE [-2 * 3, -(2 + 3), - -4]`, [[-6, -5, 4]]);
E("ops.string_compare_ordinal", `SELECT VALUE ["a" < "B", "Z" < "a", "é" > "z", "10" < "9"]`, [[false, true, true, true]], { note: "ordinal, not culture: uppercase sorts first; \"10\" < \"9\"" });

// ---- IIF, CHOOSE, ObjectToArray ----
E("fn_misc.docs_iif", `SELECT VALUE { evalTrue: IIF(true, 123, 456), evalFalse: IIF(false, 123, 456), evalNumberNotTrue: IIF(123, 123, 456), evalStringNotTrue: IIF("ABC", 123, 456), evalArrayNotTrue: IIF([1,2,3], 123, 456), evalObjectNotTrue: IIF({"name": "Alice", "age": 20}, 123, 456) }`,
  [{ evalTrue: 123, evalFalse: 456, evalNumberNotTrue: 456, evalStringNotTrue: 456, evalArrayNotTrue: 456, evalObjectNotTrue: 456 }], { src: S + "iif" });
E("fn_misc.docs_iif_fields", `SELECT p.name, IIF(p.onSale, p.pricing.sale, p.pricing.msrp) AS price FROM products p WHERE p.category = "camp-utensils"`, [
  { name: "Estrel Set Cutlery", price: 30.85 },
  { name: "Willagno Spork", price: 20.15 },
], { src: S + "iif-fields" });
E("fn_misc.iif_undefined_condition", `SELECT VALUE IIF(c.v, "yes", "no") FROM c WHERE c.kind = "t" AND c.i <= 4`, ["no", "no", "no", "yes"], { src: L + "iif", note: "undefined, null, false: the false branch" });
E("fn_misc.docs_choose", `SELECT VALUE CHOOSE(1, "adventure", "works", true, [1])`, ["adventure"], { src: S + "choose" });
E("fn_misc.docs_choose_indexes", `SELECT VALUE { index_0: CHOOSE(0, "abc", 1, true, [1]), index_1: CHOOSE(1, "abc", 1, true, [1]), index_2: CHOOSE(2, "abc", 1, true, [1]), index_3: CHOOSE(3, "abc", 1, true, [1]), index_4: CHOOSE(4, "abc", 1, true, [1]), index_5: CHOOSE(5, "abc", 1, true, [1]) }`,
  [{ index_1: "abc", index_2: 1, index_3: true, index_4: [1] }], { src: S + "choose-indexes" });
E("fn_misc.docs_choose_fields", `SELECT CHOOSE(3, p.category, p.name, p.sku) AS barcode FROM products p WHERE p.category = "short-fins"`, [{ barcode: "73311" }], { src: S + "choose-fields" });
E("fn_misc.docs_objecttoarray", `SELECT VALUE ObjectToArray({ "a": "12345", "b": "67890" })`, [[{ k: "a", v: "12345" }, { k: "b", v: "67890" }]], { src: S + "objecttoarray" });
E("fn_misc.docs_objecttoarray_key", `SELECT VALUE ObjectToArray({ "a": "12345", "b": "67890" }, "name")`, [[{ name: "a", v: "12345" }, { name: "b", v: "67890" }]], { src: S + "objecttoarray-key" });
E("fn_misc.docs_objecttoarray_key_value", `SELECT VALUE ObjectToArray({ "a": "12345", "b": "67890" }, "key", "value")`, [[{ key: "a", value: "12345" }, { key: "b", value: "67890" }]], { src: S + "objecttoarray-key-value" });
E("fn_misc.docs_objecttoarray_field", `SELECT p.name, ObjectToArray(p.quantities, "size", "quantity") AS quantitiesBySize FROM products p WHERE p.category = "sport-helmets"`, [
  { name: "Witalica helmet", quantitiesBySize: [{ size: "small", quantity: 15 }, { size: "medium", quantity: 24 }, { size: "large", quantity: 2 }, { size: "xlarge", quantity: 0 }] },
], { src: S + "objecttoarray-field" });

// ---- arrays ----
E("fn_arr.docs_array_concat", `SELECT ARRAY_CONCAT(["apples", "strawberries"], ["bananas"]) AS arrayConcat`, [{ arrayConcat: ["apples", "strawberries", "bananas"] }], { src: S + "array-concat" });
E("fn_arr.docs_array_contains", `SELECT VALUE { containsItem: ARRAY_CONTAINS(["coats", "jackets", "sweatshirts"], "coats"), missingItem: ARRAY_CONTAINS(["coats", "jackets", "sweatshirts"], "hoodies"), containsFullMatchObject: ARRAY_CONTAINS([{ category: "shirts", color: "blue" }], { category: "shirts", color: "blue" }), missingFullMatchObject: ARRAY_CONTAINS([{ category: "shirts", color: "blue" }], { category: "shirts" }), containsPartialMatchObject: ARRAY_CONTAINS([{ category: "shirts", color: "blue" }], { category: "shirts" }, true), missingPartialMatchObject: ARRAY_CONTAINS([{ category: "shirts", color: "blue" }], { category: "shorts", color: "blue" }, true) }`,
  [{ containsItem: true, missingItem: false, containsFullMatchObject: true, missingFullMatchObject: false, containsPartialMatchObject: true, missingPartialMatchObject: false }], { src: S + "array-contains" });
E("fn_arr.docs_array_length", `SELECT VALUE { length: ARRAY_LENGTH([70, 86, 92, 99, 85, 90, 82]), emptyLength: ARRAY_LENGTH([]), nullLength: ARRAY_LENGTH(null) }`, [{ length: 7, emptyLength: 0 }], { src: S + "array-length" });
E("fn_arr.docs_array_slice", `SELECT VALUE { sliceFromStart: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], 0), sliceFromSecond: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], 1), sliceFromLast: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], -1), sliceFromSecondToLast: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], -2), sliceThreeFromStart: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], 0, 3), sliceTwelveFromStart: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], 0, 12), sliceFiveFromThird: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], 3, 5), sliceOneFromSecondToLast: ARRAY_SLICE([70, 86, 92, 99, 85, 90, 82], -2, 1) }`,
  [{ sliceFromStart: [70, 86, 92, 99, 85, 90, 82], sliceFromSecond: [86, 92, 99, 85, 90, 82], sliceFromLast: [82], sliceFromSecondToLast: [90, 82], sliceThreeFromStart: [70, 86, 92], sliceTwelveFromStart: [70, 86, 92, 99, 85, 90, 82], sliceFiveFromThird: [99, 85, 90, 82], sliceOneFromSecondToLast: [90] }], { src: S + "array-slice" });
E("fn_arr.docs_setintersect", `SELECT VALUE { simpleIntersect: SetIntersect([1, 2, 3, 4], [3, 4, 5, 6]), emptyIntersect: SetIntersect([1, 2, 3, 4], []), duplicatesIntersect: SetIntersect([1, 2, 3, 4], [1, 1, 1, 1]), noMatchesIntersect: SetIntersect([1, 2, 3, 4], ["A", "B"]), unorderedIntersect: SetIntersect([1, 2, "A", "B"], ["A", 1]) }`,
  [{ simpleIntersect: [3, 4], emptyIntersect: [], duplicatesIntersect: [1], noMatchesIntersect: [], unorderedIntersect: ["A", 1] }], { src: S + "setintersect", unsure: true, note: "novalidate sample; element order as printed there" });
E("fn_arr.docs_setunion", `SELECT VALUE { simpleUnion: SetUnion([1, 2, 3, 4], [3, 4, 5, 6]), emptyUnion: SetUnion([1, 2, 3, 4], []), duplicatesUnion: SetUnion([1, 2, 3, 4], [1, 1, 1, 1]), unorderedUnion: SetUnion([1, 2, "A", "B"], ["A", 1]) }`,
  [{ simpleUnion: [1, 2, 3, 4, 5, 6], emptyUnion: [1, 2, 3, 4], duplicatesUnion: [1, 2, 3, 4], unorderedUnion: [1, 2, "A", "B"] }], { src: S + "setunion", unsure: true, note: "novalidate sample" });
E("fn_arr.docs_setintersect_field", `SELECT p.name, SetIntersect(p.colors, p.inStockColors) AS availableColors FROM products p WHERE p.category = "modern-vests"`, [{ name: "Snowilla vest", availableColors: ["Rhino", "Finch"] }], { src: S + "setintersect-field", unsure: true, note: "novalidate sample; element order as printed there" });
E("fn_arr.docs_setunion_field", `SELECT p.name, SetUnion(p.colors[0].values, p.colors[1].values) AS allColors FROM products p WHERE p.category = "seasonal-coats"`, [
  { name: "Malsca coat", allColors: ["Cutty Sark", "Horizon", "Russet", "Fuscous", "Tacha"] },
], { src: S + "setunion-field", unsure: true, note: "novalidate sample" });
const WM = (name, cond, expectedIds, o = {}) => E(name, `SELECT VALUE c.id FROM c WHERE ${cond}`, ids(expectedIds), { src: L + "array-contains", ...o });
WM("fn_arr.contains_partial_data", `ARRAY_CONTAINS(c.items, {color: "red"}, true)`, "m03 m04");
WM("fn_arr.contains_full_needs_all_members", `ARRAY_CONTAINS(c.items, {color: "red"})`, "");
WM("fn_arr.contains_full_object", `ARRAY_CONTAINS(c.items, {name: "c", qty: 10, color: "red"})`, "m04");
WM("fn_arr.contains_partial_two_members", `ARRAY_CONTAINS(c.items, {color: "red", qty: 1}, true)`, "m03");
WM("fn_arr.contains_partial_false_flag", `ARRAY_CONTAINS(c.items, {color: "red"}, false)`, "");
WM("fn_arr.contains_nested_array", `ARRAY_CONTAINS(c.arr, [2, 3])`, "m01");
WM("fn_arr.contains_object_in_mixed", `ARRAY_CONTAINS(c.arr, {x: 1})`, "m01");
WM("fn_arr.contains_number", `ARRAY_CONTAINS(c.arr, 1)`, "m01");
WM("fn_arr.contains_number_not_string", `ARRAY_CONTAINS(c.arr, "1")`, "");
WM("fn_arr.contains_tags_partial", `ARRAY_CONTAINS(c.tags, {slug: "bag-shape-mummy"}, true)`, "ffffffff-5555-6666-7777-aaaaaaaaaaaa c2c2c2c2-dddd-eeee-ffff-a3a3a3a3a3a3");
WM("fn_arr.contains_strings", `ARRAY_CONTAINS(c.inStockColors, "Finch")`, "5688704115");
WM("fn_arr.contains_non_array", `ARRAY_CONTAINS(c.items, "not-an-array")`, "", { note: "m06.items is a string, not an array" });
WM("fn_arr.not_contains", `c.kind = "m" AND NOT ARRAY_CONTAINS(c.items, {color: "blue"}, true)`, "m04 m05", { unsure: true, note: "m03 has blue; assumed ARRAY_CONTAINS over undefined or a string is undefined (so NOT drops those items)" });
E("fn_arr.length_data", `SELECT c.id, ARRAY_LENGTH(c.items) AS n FROM c WHERE c.kind = "m"`, [
  { id: "m01" },
  { id: "m02" },
  { id: "m03", n: 2 },
  { id: "m04", n: 1 },
  { id: "m05", n: 0 },
  { id: "m06" },
  { id: "m07" },
  { id: "m08" },
], { src: L + "array-length" });
E("fn_arr.length_filter", `SELECT VALUE f.id FROM f WHERE ARRAY_LENGTH(f.children) > 1`, ["WakefieldFamily"], { src: L + "array-length" });
E("fn_arr.slice_data", `SELECT VALUE ARRAY_SLICE(c.colors, -1) FROM c WHERE c.id = "5688704115"`, [["Rhino"]], { src: L + "array-slice" });
E("fn_arr.slice_objects", `SELECT VALUE ARRAY_SLICE(c.tags, 1, 1) FROM c WHERE c.id = "ffffffff-5555-6666-7777-aaaaaaaaaaaa"`, [[{ id: "bbbbbbbb-7777-8888-9999-cccccccccccc", slug: "bag-insulation-down-fill", name: "Bag Insulation: Down Fill" }]], { src: L + "array-slice" });
E("fn_arr.concat_data", `SELECT VALUE ARRAY_CONCAT(c.inStockColors, c.colors) FROM c WHERE c.id = "5688704115"`, [["Rhino", "Finch", "Finch", "Mine Shaft", "Rhino"]], { src: L + "array-concat" });
E("fn_arr.concat_three", `SELECT VALUE ARRAY_CONCAT([1], [], [2, [3]])`, [[1, 2, [3]]], { src: L + "array-concat" });
E("fn_arr.concat_non_array", `SELECT VALUE ARRAY_CONCAT([1], "x")`, [], { src: L + "array-concat", unsure: true, note: "assumed a non-array argument gives undefined" });
E("fn_arr.index_past_end_in_array", `SELECT VALUE ARRAY_LENGTH(c.arr2d[1]) FROM c WHERE c.id = "m07"`, [2]);

// ---- date and time ----
const DT = "2020-07-03T00:00:00.0000000";
E("fn_date.docs_datetimeadd", `SELECT VALUE { addOneYear: DateTimeAdd("yyyy", 1, "${DT}"), addOneMonth: DateTimeAdd("mm", 1, "${DT}"), addOneDay: DateTimeAdd("dd", 1, "${DT}"), addOneHour: DateTimeAdd("hh", 1, "${DT}"), subtractOneYear: DateTimeAdd("yyyy", -1, "${DT}"), subtractOneMonth: DateTimeAdd("mm", -1, "${DT}"), subtractOneDay: DateTimeAdd("dd", -1, "${DT}"), subtractOneHour: DateTimeAdd("hh", -1, "${DT}"), modifySecondsExpression: DateTimeAdd("ss", 5 * -5, "${DT}") }`,
  [{ addOneYear: "2021-07-03T00:00:00.0000000Z", addOneMonth: "2020-08-03T00:00:00.0000000Z", addOneDay: "2020-07-04T00:00:00.0000000Z", addOneHour: "2020-07-03T01:00:00.0000000Z", subtractOneYear: "2019-07-03T00:00:00.0000000Z", subtractOneMonth: "2020-06-03T00:00:00.0000000Z", subtractOneDay: "2020-07-02T00:00:00.0000000Z", subtractOneHour: "2020-07-02T23:00:00.0000000Z", modifySecondsExpression: "2020-07-02T23:59:35.0000000Z" }], { src: S + "datetimeadd" });
E("fn_date.docs_datetimebin", `SELECT VALUE { binDay: DateTimeBin("2021-01-08T18:35:00.0000000", "dd"), binHour: DateTimeBin("2021-01-08T18:35:00.0000000", "hh"), binSecond: DateTimeBin("2021-01-08T18:35:00.0000000", "ss"), binFiveHours: DateTimeBin("2021-01-08T18:35:00.0000000", "hh", 5), binSevenDaysUnixEpoch: DateTimeBin("2021-01-08T18:35:00.0000000", "dd", 7), binSevenDaysWindowsEpoch: DateTimeBin("2021-01-08T18:35:00.0000000", "dd", 7, "1601-01-01T00:00:00.0000000") }`,
  [{ binDay: "2021-01-08T00:00:00.0000000Z", binHour: "2021-01-08T18:00:00.0000000Z", binSecond: "2021-01-08T18:35:00.0000000Z", binFiveHours: "2021-01-08T15:00:00.0000000Z", binSevenDaysUnixEpoch: "2021-01-07T00:00:00.0000000Z", binSevenDaysWindowsEpoch: "2021-01-04T00:00:00.0000000Z" }], { src: S + "datetimebin" });
const D1 = "2019-02-04T16:00:00.0000000";
const D2 = "2018-03-05T05:00:00.0000000";
E("fn_date.docs_datetimediff", `SELECT VALUE { diffPastYears: DateTimeDiff("yyyy", "${D1}", "${D2}"), diffPastMonths: DateTimeDiff("mm", "${D1}", "${D2}"), diffPastDays: DateTimeDiff("dd", "${D1}", "${D2}"), diffPastHours: DateTimeDiff("hh", "${D1}", "${D2}"), diffPastSeconds: DateTimeDiff("ss", "${D1}", "${D2}"), diffFutureYears: DateTimeDiff("yyyy", "${D2}", "${D1}"), diffFutureMonths: DateTimeDiff("mm", "${D2}", "${D1}"), diffFutureDays: DateTimeDiff("dd", "${D2}", "${D1}"), diffFutureHours: DateTimeDiff("hh", "${D2}", "${D1}"), diffFutureSeconds: DateTimeDiff("ss", "${D2}", "${D1}") }`,
  [{ diffPastYears: -1, diffPastMonths: -11, diffPastDays: -336, diffPastHours: -8075, diffPastSeconds: -29070000, diffFutureYears: 1, diffFutureMonths: 11, diffFutureDays: 336, diffFutureHours: 8075, diffFutureSeconds: 29070000 }], { src: S + "datetimediff" });
E("fn_date.docs_datetimefromparts", `SELECT VALUE { constructMinArguments: DateTimeFromParts(2017, 4, 20), constructMinEquivalent: DateTimeFromParts(2017, 4, 20, 0, 0, 0, 0), constructAllArguments: DateTimeFromParts(2017, 4, 20, 13, 15, 20, 3456789), constructPartialArguments: DateTimeFromParts(2017, 4, 20, 13, 15), constructInvalidArguments: DateTimeFromParts(-2000, -1, -1) }`,
  [{ constructMinArguments: "2017-04-20T00:00:00.0000000Z", constructMinEquivalent: "2017-04-20T00:00:00.0000000Z", constructAllArguments: "2017-04-20T13:15:20.3456789Z", constructPartialArguments: "2017-04-20T13:15:00.0000000Z" }], { src: S + "datetimefromparts" });
const DP = "2016-05-29T08:30:00.1301617";
E("fn_date.docs_datetimepart", `SELECT VALUE { getYear: DateTimePart("yyyy", "${DP}"), getMonth: DateTimePart("mm", "${DP}"), getDay: DateTimePart("dd", "${DP}"), getHour: DateTimePart("hh", "${DP}"), getMinute: DateTimePart("mi", "${DP}"), getSecond: DateTimePart("ss", "${DP}"), getMillisecond: DateTimePart("ms", "${DP}"), getMicrosecond: DateTimePart("mcs", "${DP}"), getNanosecond: DateTimePart("ns", "${DP}") }`,
  [{ getYear: 2016, getMonth: 5, getDay: 29, getHour: 8, getMinute: 30, getSecond: 0, getMillisecond: 130, getMicrosecond: 130161, getNanosecond: 130161700 }], { src: S + "datetimepart" });
E("fn_date.docs_datetimetoticks", `SELECT VALUE { ticks: DateTimeToTicks("2015-05-19T12:00:00.0000000") }`, [{ ticks: 14320368000000000 }], { src: S + "datetimetoticks" });
E("fn_date.docs_datetimetotimestamp", `SELECT VALUE { timestamp: DateTimeToTimestamp("2015-05-19T12:00:00.0000000") }`, [{ timestamp: 1432036800000 }], { src: S + "datetimetotimestamp" });
E("fn_date.docs_tickstodatetime", `SELECT VALUE { parseTicks: TicksToDateTime(15973607943002652), parseUnixEpoch: TicksToDateTime(0), parseWindowsEpoch: TicksToDateTime(-116444736000000000) }`,
  [{ parseTicks: "2020-08-13T23:19:54.3002652Z", parseUnixEpoch: "1970-01-01T00:00:00.0000000Z", parseWindowsEpoch: "1601-01-01T00:00:00.0000000Z" }], { src: S + "tickstodatetime" });
E("fn_date.docs_timestamptodatetime", `SELECT VALUE { parseTicks: TimestampToDateTime(1597360794300), parseUnixEpoch: TimestampToDateTime(0), parseWindowsEpoch: TimestampToDateTime(-11644473600000) }`,
  [{ parseTicks: "2020-08-13T23:19:54.3000000Z", parseUnixEpoch: "1970-01-01T00:00:00.0000000Z", parseWindowsEpoch: "1601-01-01T00:00:00.0000000Z" }], { src: S + "timestamptodatetime" });
E("fn_date.part_data", `SELECT VALUE DateTimePart("yyyy", c.dt) FROM c WHERE c.kind = "m"`, [2024, 2023, 2020], { src: L + "datetimepart", note: "\"not a date\" gives undefined" });
E("fn_date.part_fraction", `SELECT VALUE [DateTimePart("mi", c.dt), DateTimePart("ss", c.dt), DateTimePart("ms", c.dt)] FROM c WHERE c.id = "m02"`, [[59, 59, 999]], { src: L + "datetimepart" });
E("fn_date.to_timestamp_data", `SELECT VALUE DateTimeToTimestamp(c.dt) FROM c WHERE c.id = "m01"`, [1705314600000], { src: L + "datetimetotimestamp" });
E("fn_date.to_timestamp_epoch", `SELECT VALUE DateTimeToTimestamp("1970-01-01T00:00:00.0000000Z")`, [0], { src: L + "datetimetotimestamp" });
E("fn_date.to_timestamp_invalid", `SELECT VALUE DateTimeToTimestamp("not a date")`, [], { src: L + "datetimetotimestamp", note: "an invalid date gives undefined" });
E("fn_date.diff_leap_year", `SELECT VALUE DateTimeDiff("dd", "2024-01-01T00:00:00.0000000Z", "2024-03-01T00:00:00.0000000Z")`, [60], { src: L + "datetimediff" });
E("fn_date.diff_minutes", `SELECT VALUE DateTimeDiff("mi", "2024-01-01T00:00:00.0000000Z", "2024-01-01T01:30:00.0000000Z")`, [90], { src: L + "datetimediff" });
E("fn_date.add_across_year", `SELECT VALUE DateTimeAdd("ss", 1, c.dt) FROM c WHERE c.id = "m02"`, ["2024-01-01T00:00:00.9999999Z"], { src: L + "datetimeadd" });
E("fn_date.add_leap_day_year", `SELECT VALUE DateTimeAdd("yyyy", 1, "2020-02-29T00:00:00.0000000Z")`, ["2021-02-28T00:00:00.0000000Z"], { src: L + "datetimeadd", unsure: true, note: "assumed .NET AddYears clamping to the month's end" });
E("fn_date.add_month_end", `SELECT VALUE DateTimeAdd("mm", 1, "2024-01-31T00:00:00.0000000Z")`, ["2024-02-29T00:00:00.0000000Z"], { src: L + "datetimeadd", unsure: true, note: "assumed .NET AddMonths clamping to the month's end" });
E("fn_date.add_invalid", `SELECT VALUE DateTimeAdd("dd", 1, "not a date")`, [], { src: L + "datetimeadd" });
const ISO7 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/;
E("fn_date.current_datetime_shape", `SELECT VALUE GetCurrentDateTime()`, [], {
  src: S + "getcurrentdatetime",
  check: (rows) => {
    if (rows.length !== 1 || typeof rows[0] !== "string" || !ISO7.test(rows[0])) return "want one ISO 8601 string with 7 fraction digits and Z";
    const t = Date.parse(rows[0]);
    return Math.abs(t - Date.now()) < 86400000 ? null : "not within a day of the client's clock";
  },
});
E("fn_date.current_timestamp_shape", `SELECT VALUE GetCurrentTimestamp()`, [], {
  src: S + "getcurrenttimestamp",
  check: (rows) => (rows.length === 1 && Number.isInteger(rows[0]) && Math.abs(rows[0] - Date.now()) < 86400000 ? null : "want one integer of milliseconds since the epoch, within a day of now"),
});
E("fn_date.current_ticks_shape", `SELECT VALUE GetCurrentTicks()`, [], {
  src: S + "getcurrentticks",
  check: (rows) => (rows.length === 1 && typeof rows[0] === "number" && Math.abs(rows[0] / 1e4 - Date.now()) < 86400000 ? null : "want one number of 100 ns ticks since the Unix epoch, within a day of now"),
});
E("fn_date.current_static_same_in_partition", `SELECT VALUE GetCurrentDateTimeStatic() FROM c`, [], {
  src: S + "getcurrentdatetimestatic",
  pk: "types",
  check: (rows) => (rows.length === 16 && rows.every((r) => typeof r === "string" && ISO7.test(r) && r === rows[0]) ? null : "want 16 equal ISO strings (one partition)"),
});
E("fn_date.current_is_string", `SELECT VALUE IS_STRING(GetCurrentDateTime()) AND GetCurrentDateTime() > "2020"`, [true]);

// ===================================================================
// Queries that must fail: HTTP 400 with a message
// ===================================================================

X("error.syntax_select_typo", `SELEC * FROM c`);
X("error.syntax_from_typo", `SELECT * FORM c`);
X("error.syntax_where_empty", `SELECT * FROM c WHERE`);
X("error.syntax_dangling_operator", `SELECT * FROM c WHERE c.id =`);
X("error.keyword_as_alias", `SELECT c.g, MAX(c.i) AS top FROM c GROUP BY c.g`, { note: "TOP is a keyword, not an identifier (sql.g4: identifier : LEX_IDENTIFIER | K_ALL | K_FIRST | K_LAST)" });
X("error.syntax_dangling_and", `SELECT * FROM c WHERE c.a = 1 AND`);
X("error.syntax_order_without_by", `SELECT * FROM c ORDER`);
X("error.syntax_order_by_empty", `SELECT c.id FROM c ORDER BY`);
X("error.syntax_select_nothing", `SELECT FROM c`);
X("error.syntax_select_alone", `SELECT`);
X("error.syntax_empty_query", ` `);
X("error.syntax_unbalanced_paren", `SELECT * FROM c WHERE (c.id = "a"`);
X("error.syntax_extra_paren", `SELECT * FROM c WHERE c.id = "a")`);
X("error.syntax_two_values", `SELECT * FROM c WHERE c.v = 1 2`);
X("error.syntax_unterminated_string", `SELECT * FROM c WHERE c.s = 'unterminated`);
X("error.syntax_unterminated_double", `SELECT VALUE "abc`);
X("error.syntax_empty_in", `SELECT VALUE 1 FROM c WHERE c.id IN ()`);
X("error.syntax_trailing_comma", `SELECT c.id, FROM c`);
X("error.syntax_bad_object", `SELECT VALUE {a: }`);
X("error.star_with_join", `SELECT * FROM c JOIN t IN c.tags`, { src: L + "join", note: "* needs a single input set" });
X("error.star_without_from", `SELECT *`, { src: L + "select", note: "SELECT * is only valid with a FROM clause" });
X("error.value_star", `SELECT VALUE * FROM c`, { src: L + "logical-operators#-operator" });
X("error.star_and_field", `SELECT *, c.id FROM c`, { src: L + "logical-operators#-operator" });
X("error.value_two_expressions", `SELECT VALUE c.id, c.pk FROM c`, { src: L + "select" });
X("error.aliased_source_name", `SELECT products.id FROM products p`, { src: L + "from", note: "once aliased, the source name can't be bound" });
X("error.unbound_identifier", `SELECT id FROM products p`, { src: L + "from", note: "properties must be qualified" });
X("error.unknown_function", `SELECT VALUE NOSUCHFUNCTION(1)`);
X("error.unknown_function_where", `SELECT * FROM c WHERE NOT_A_FUNCTION(c.id)`);
X("error.arity_lower_none", `SELECT VALUE LOWER()`);
X("error.arity_lower_two", `SELECT VALUE LOWER("a", "b")`);
X("error.arity_substring", `SELECT VALUE SUBSTRING("abc", 1)`);
X("error.arity_abs", `SELECT VALUE ABS()`);
X("error.arity_array_contains", `SELECT VALUE ARRAY_CONTAINS([1])`);
X("error.arity_datetimeadd", `SELECT VALUE DateTimeAdd("yyyy", 1)`);
X("error.arity_concat_one", `SELECT VALUE CONCAT("a")`, { src: L + "concat", unsure: true, note: "CONCAT takes two or more arguments" });
X("error.missing_parameter", `SELECT * FROM c WHERE c.id = @missing`, { unsure: true, note: "a parameter referenced but not supplied" });
X("error.top_negative", `SELECT TOP -1 * FROM c`);
X("error.top_not_integer", `SELECT TOP "a" * FROM c`);
X("error.offset_without_limit", `SELECT * FROM c OFFSET 1`);
X("error.limit_without_offset", `SELECT * FROM c LIMIT 1`);
X("error.aggregate_in_where", `SELECT VALUE COUNT(1) FROM c WHERE COUNT(1) > 1`);
X("error.nested_aggregate", `SELECT VALUE SUM(SUM(c.n)) FROM c`);
X("error.aggregate_in_group_by", `SELECT COUNT(1) AS n FROM c GROUP BY COUNT(1)`, { src: L + "group-by" });
X("error.group_by_non_grouped_select", `SELECT c.id FROM c GROUP BY c.g`, { src: L + "group-by" });
X("error.group_by_subquery", `SELECT COUNT(1) AS n FROM c GROUP BY (SELECT VALUE 1)`, { src: L + "group-by" });
X("error.duplicate_alias", `SELECT 1 AS a, 2 AS a`, { unsure: true, note: "assumed duplicate property names in the select list are refused" });
X("error.duplicate_from_alias", `SELECT VALUE 1 FROM c JOIN c IN c.tags`, { src: L + "from", note: "aliases must be unique" });
X("error.reserved_word_alias", `SELECT c.id AS select FROM c`);
