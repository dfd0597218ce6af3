"""atrestd driven by Debian's python3-azure-cosmos 3.1.1 (run with /usr/bin/python3).

One server for the module; every test class works in its own database.
"""

import json
import os
import sys
import unittest
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import azure.cosmos.cosmos_client as cosmos_client  # noqa: E402
import azure.cosmos.documents as documents  # noqa: E402
import azure.cosmos.errors as errors  # noqa: E402

import harness  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    warnings.simplefilter("ignore")  # requests warns about unverified localhost TLS
    SERVER = harness.Server()


def tearDownModule():
    problems = SERVER.stop_and_check()
    SERVER.cleanup()
    if problems:
        raise AssertionError("\n".join(problems))


def uid(prefix=""):
    return prefix + uuid.uuid4().hex[:12]


def new_client():
    return cosmos_client.CosmosClient(SERVER.endpoint, {"masterKey": SERVER.master_key})


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = new_client()
        cls.db = cls.client.CreateDatabase({"id": uid("pydb")})
        cls.db_link = "dbs/" + cls.db["id"]
        cls.coll = cls.client.CreateContainer(
            cls.db_link, {"id": "c", "partitionKey": {"paths": ["/pk"], "kind": "Hash"}})
        cls.coll_link = cls.db_link + "/colls/c"

    def doc_link(self, doc_id):
        return self.coll_link + "/docs/" + doc_id

    def assertStatus(self, status, fn, *args, **kw):
        with self.assertRaises(errors.HTTPFailure) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.status_code, status, str(cm.exception))
        return cm.exception


class DatabasesAndContainers(Base):
    def test_database_read_list_delete(self):
        db_id = uid("pydb")
        created = self.client.CreateDatabase({"id": db_id})
        self.assertEqual(created["id"], db_id)
        for p in ("_rid", "_self", "_etag", "_ts"):
            self.assertIn(p, created)
        self.assertEqual(self.client.ReadDatabase("dbs/" + db_id)["id"], db_id)
        self.assertIn(db_id, [d["id"] for d in self.client.ReadDatabases()])
        self.assertStatus(409, self.client.CreateDatabase, {"id": db_id})
        self.client.DeleteDatabase("dbs/" + db_id)
        self.assertStatus(404, self.client.ReadDatabase, "dbs/" + db_id)
        self.assertStatus(404, self.client.DeleteDatabase, "dbs/" + db_id)

    def test_container_read_returns_partition_key_and_indexing_policy(self):
        c = self.client.ReadContainer(self.coll_link)
        self.assertEqual(c["id"], "c")
        self.assertEqual(c["partitionKey"]["paths"], ["/pk"])
        self.assertIn("indexingPolicy", c)
        self.assertIn("_rid", c)
        self.assertIn("c", [x["id"] for x in self.client.ReadContainers(self.db_link)])
        # The trailing-slash and leading-slash forms the SDK also uses.
        self.assertEqual(self.client.ReadContainer("/" + self.coll_link + "/")["id"], "c")

    def test_container_create_conflict_and_delete(self):
        cid = uid("pc")
        self.client.CreateContainer(self.db_link, {"id": cid, "partitionKey": {"paths": ["/k"], "kind": "Hash"}})
        self.assertStatus(409, self.client.CreateContainer, self.db_link,
                          {"id": cid, "partitionKey": {"paths": ["/k"], "kind": "Hash"}})
        self.client.DeleteContainer(self.db_link + "/colls/" + cid)
        self.assertStatus(404, self.client.ReadContainer, self.db_link + "/colls/" + cid)

    def test_query_databases_and_containers(self):
        # the usual 3.x way to ask whether one exists
        q = {"query": "SELECT * FROM root r WHERE r.id = @id",
             "parameters": [{"name": "@id", "value": self.db["id"]}]}
        found = list(self.client.QueryDatabases(q))
        self.assertEqual([d["id"] for d in found], [self.db["id"]])
        self.assertEqual(found[0]["_rid"], self.db["_rid"])
        self.assertEqual(list(self.client.QueryDatabases(
            {"query": "SELECT * FROM root r WHERE r.id = @id",
             "parameters": [{"name": "@id", "value": uid("none")}]})), [])
        got = list(self.client.QueryContainers(
            self.db_link, "SELECT VALUE r.partitionKey.paths[0] FROM root r WHERE r.id = 'c'"))
        self.assertEqual(got, ["/pk"])
        self.assertStatus(400, lambda: list(self.client.QueryContainers(self.db_link, "SELECT FROM")))

    def test_offers(self):
        cid = uid("po")
        created = self.client.CreateContainer(
            self.db_link, {"id": cid, "partitionKey": {"paths": ["/k"], "kind": "Hash"}},
            {"offerThroughput": 700})
        offers = list(self.client.QueryOffers(
            {"query": "SELECT * FROM root r WHERE r.resource = @s",
             "parameters": [{"name": "@s", "value": created["_self"]}]}))
        self.assertEqual(len(offers), 1)
        offer = offers[0]
        self.assertEqual(offer["content"]["offerThroughput"], 700)
        self.assertEqual(offer["offerResourceId"], created["_rid"])
        self.assertIn(offer["id"], [o["id"] for o in self.client.ReadOffers()])
        self.assertEqual(self.client.ReadOffer(offer["_self"])["content"]["offerThroughput"], 700)
        offer["content"]["offerThroughput"] = 1500
        self.assertEqual(self.client.ReplaceOffer(offer["_self"], offer)["content"]["offerThroughput"], 1500)
        offer["content"]["offerThroughput"] = 1550
        self.assertStatus(400, self.client.ReplaceOffer, offer["_self"], offer)
        self.assertEqual(self.client.ReadOffer(offer["_self"])["content"]["offerThroughput"], 1500)
        self.client.DeleteContainer(self.db_link + "/colls/" + cid)
        self.assertStatus(404, self.client.ReadOffer, offer["_self"])


class Items(Base):
    def test_create_read_replace_upsert_delete(self):
        doc_id = uid("d")
        created = self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "p1", "v": 1, "name": "Grace"})
        self.assertEqual(created["v"], 1)
        for p in ("_rid", "_self", "_etag", "_ts", "_attachments"):
            self.assertIn(p, created)
        headers = {k.lower(): v for k, v in self.client.last_response_headers.items()}
        self.assertEqual(headers.get("etag"), created["_etag"], "etag header differs from _etag")

        read = self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1"})
        self.assertEqual(read["name"], "Grace")

        replaced = self.client.ReplaceItem(self.doc_link(doc_id), {"id": doc_id, "pk": "p1", "v": 2})
        self.assertEqual(replaced["v"], 2)
        self.assertNotEqual(replaced["_etag"], created["_etag"])
        self.assertNotIn("name", self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1"}))

        up = self.client.UpsertItem(self.coll_link, {"id": doc_id, "pk": "p1", "v": 3})
        self.assertEqual(up["v"], 3)
        new_id = uid("u")
        self.client.UpsertItem(self.coll_link, {"id": new_id, "pk": "p1", "v": 1})
        self.assertEqual(self.client.ReadItem(self.doc_link(new_id), {"partitionKey": "p1"})["v"], 1)

        self.client.DeleteItem(self.doc_link(doc_id), {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadItem, self.doc_link(doc_id), {"partitionKey": "p1"})
        self.assertStatus(404, self.client.DeleteItem, self.doc_link(doc_id), {"partitionKey": "p1"})

    def test_self_links_read_replace_delete(self):
        # Python 3.x code often addresses documents by their _self link
        # (dbs/<rid>/colls/<rid>/docs/<rid>/), as the SDK's samples do.
        doc_id = uid("self")
        created = self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "p1", "v": 1})
        link = created["_self"]
        self.assertTrue(link.startswith("dbs/"), link)
        read = self.client.ReadItem(link, {"partitionKey": "p1"})
        self.assertEqual(read["id"], doc_id)
        self.assertEqual(read["_rid"], created["_rid"])
        replaced = self.client.ReplaceItem(link, {"id": doc_id, "pk": "p1", "v": 2}, {"partitionKey": "p1"})
        self.assertEqual(replaced["v"], 2)
        self.assertEqual(replaced["_rid"], created["_rid"])
        self.client.DeleteItem(link, {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadItem, link, {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadItem, self.doc_link(doc_id), {"partitionKey": "p1"})

    def test_upsert_status_codes(self):
        doc_id = uid("s")
        self.client.UpsertItem(self.coll_link, {"id": doc_id, "pk": "p1"})
        # The SDK hides the status of a success; a second upsert must not be a conflict.
        self.client.UpsertItem(self.coll_link, {"id": doc_id, "pk": "p1", "again": True})
        self.assertTrue(self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1"})["again"])

    def test_read_missing_is_404(self):
        self.assertStatus(404, self.client.ReadItem, self.doc_link(uid("missing")), {"partitionKey": "p1"})

    def test_duplicate_id_409_only_within_a_partition(self):
        doc_id = uid("dup")
        self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "a"})
        self.assertStatus(409, self.client.CreateItem, self.coll_link, {"id": doc_id, "pk": "a"})
        self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "b"})
        self.assertEqual(self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "b"})["pk"], "b")

    def test_stale_etag_412(self):
        doc_id = uid("e")
        v1 = self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "p1", "v": 1})
        v2 = self.client.ReplaceItem(self.doc_link(doc_id), {"id": doc_id, "pk": "p1", "v": 2})
        stale = {"accessCondition": {"type": "IfMatch", "condition": v1["_etag"]}}
        self.assertStatus(412, self.client.ReplaceItem, self.doc_link(doc_id), {"id": doc_id, "pk": "p1", "v": 3}, dict(stale))
        self.assertStatus(412, self.client.DeleteItem, self.doc_link(doc_id), dict(stale, partitionKey="p1"))
        self.assertEqual(self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1"})["v"], 2)
        ok = self.client.ReplaceItem(self.doc_link(doc_id), {"id": doc_id, "pk": "p1", "v": 3},
                                     {"accessCondition": {"type": "IfMatch", "condition": v2["_etag"]}})
        self.assertEqual(ok["v"], 3)

    def test_if_none_match_read(self):
        doc_id = uid("n")
        v1 = self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "p1"})
        r = self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1",
                                                         "accessCondition": {"type": "IfNoneMatch", "condition": v1["_etag"]}})
        self.assertIsNone(r, "If-None-Match with the current etag must be 304 with no body")
        self.client.ReplaceItem(self.doc_link(doc_id), {"id": doc_id, "pk": "p1", "v": 2})
        r = self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": "p1",
                                                         "accessCondition": {"type": "IfNoneMatch", "condition": v1["_etag"]}})
        self.assertEqual(r["v"], 2)

    def test_partition_key_types(self):
        for i, pk in enumerate(["ö", "日本", 7, 2.5, True, None]):
            doc_id = "pkt-%d" % i
            self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": pk, "i": i})
            self.assertEqual(self.client.ReadItem(self.doc_link(doc_id), {"partitionKey": pk})["i"], i)
        # A document without the key lives under the "undefined" key.
        self.client.CreateItem(self.coll_link, {"id": "pkt-none", "i": 99})
        self.assertEqual(self.client.ReadItem(self.doc_link("pkt-none"), {"partitionKey": documents.Undefined})["i"], 99)
        # Number 7 and string "7" are different keys.
        self.assertStatus(404, self.client.ReadItem, self.doc_link("pkt-2"), {"partitionKey": "7"})

    def test_wrong_partition_key_is_400(self):
        e = self.assertStatus(400, self.client.CreateItem, self.coll_link, {"id": uid("w"), "pk": "a"}, {"partitionKey": "b"})
        self.assertEqual(e.sub_status, 1001)


class FeedData(Base):
    N = 17

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(cls.N):
            cls.client.CreateItem(cls.coll_link, {"id": "f%02d" % i, "pk": "p%d" % (i % 3), "x": i % 4})


class Feeds(FeedData):

    def test_read_items_feed_all_once(self):
        ids = [d["id"] for d in self.client.ReadItems(self.coll_link)]
        self.assertEqual(sorted(ids), ["f%02d" % i for i in range(self.N)])

    def test_read_items_feed_paged(self):
        it = self.client.ReadItems(self.coll_link, {"maxItemCount": 4})
        ids = []
        pages = 0
        while True:
            block = it.fetch_next_block()
            if not block:
                break
            self.assertLessEqual(len(block), 4)
            ids.extend(d["id"] for d in block)
            pages += 1
            self.assertLess(pages, 100)
        self.assertEqual(sorted(ids), ["f%02d" % i for i in range(self.N)])
        self.assertEqual(len(ids), len(set(ids)))
        self.assertGreaterEqual(pages, 5)

    def test_query_single_partition(self):
        res = list(self.client.QueryItems(self.coll_link, "SELECT * FROM c", {"partitionKey": "p1"}))
        self.assertEqual(sorted(d["id"] for d in res), ["f%02d" % i for i in range(self.N) if i % 3 == 1])

    def test_query_with_parameters_single_partition(self):
        q = {"query": "SELECT * FROM c WHERE c.x = @v", "parameters": [{"name": "@v", "value": 2}]}
        res = list(self.client.QueryItems(self.coll_link, q, {"partitionKey": "p0"}))
        self.assertEqual(sorted(d["id"] for d in res), ["f%02d" % i for i in range(self.N) if i % 3 == 0 and i % 4 == 2])

    def test_query_cross_partition(self):
        q = {"query": "SELECT * FROM c WHERE c.x = @v", "parameters": [{"name": "@v", "value": 1}]}
        res = list(self.client.QueryItems(self.coll_link, q, {"enableCrossPartitionQuery": True}))
        self.assertEqual(sorted(d["id"] for d in res), ["f%02d" % i for i in range(self.N) if i % 4 == 1])
        res = list(self.client.QueryItems(self.coll_link, "SELECT * FROM c", {"enableCrossPartitionQuery": True}))
        self.assertEqual(len(res), self.N)

    def test_query_cross_partition_paged(self):
        it = self.client.QueryItems(self.coll_link, "SELECT * FROM c", {"enableCrossPartitionQuery": True, "maxItemCount": 5})
        ids = []
        while True:
            block = it.fetch_next_block()
            if not block:
                break
            self.assertLessEqual(len(block), 5)
            ids.extend(d["id"] for d in block)
        self.assertEqual(sorted(ids), ["f%02d" % i for i in range(self.N)])

    def test_query_across_partitions_without_the_flag_is_400(self):
        # Cosmos: "Cross partition query is required but disabled" (400).
        self.assertStatus(400, lambda: list(self.client.QueryItems(self.coll_link, "SELECT * FROM c WHERE c.x = 1")))


class ChangeFeed(Base):
    """QueryItemsChangeFeed (A-IM: Incremental feed, etag positions): every
    created or changed document once, in its latest version, in change
    order; a saved position sees only what came after it."""

    def feed(self, **opts):
        opts.setdefault("partitionKeyRangeId", "0")
        it = self.client.QueryItemsChangeFeed(self.coll_link, opts)
        docs = list(it)
        return docs, self.client.last_response_headers.get("etag")

    def test_changes_in_order_and_resumed(self):
        for i in range(12):
            self.client.CreateItem(self.coll_link, {"id": "cf%02d" % i, "pk": "p%d" % (i % 2)})
        self.client.ReplaceItem(self.doc_link("cf03"), {"id": "cf03", "pk": "p1", "v": 2})
        self.client.DeleteItem(self.doc_link("cf04"), {"partitionKey": "p0"})
        docs, _ = self.feed(startFromBeginning=True, maxItemCount=5)
        ids = [d["id"] for d in docs]
        want = ["cf%02d" % i for i in range(12) if i not in (3, 4)] + ["cf03"]
        self.assertEqual(ids, want)
        self.assertEqual(docs[-1]["v"], 2)
        lsns = [d["_lsn"] for d in docs]
        self.assertEqual(lsns, sorted(lsns))
        position = '"%d"' % lsns[-1]
        self.client.UpsertItem(self.coll_link, {"id": "cf05", "pk": "p1", "v": 3})
        later, _ = self.feed(continuation=position)
        self.assertEqual([(d["id"], d["v"]) for d in later], [("cf05", 3)])
        nothing, _ = self.feed(continuation='"%d"' % later[-1]["_lsn"])
        self.assertEqual(nothing, [])


class QueryLanguage(FeedData):
    """The query engine through the 3.1.1 SDK: it sends cross-partition
    queries as they are (no query plan), so the server runs ORDER BY, TOP,
    aggregates, GROUP BY and DISTINCT itself and pages the result."""

    def q(self, query, params=None, **opts):
        opts.setdefault("enableCrossPartitionQuery", True)
        body = {"query": query, "parameters": params or []}
        return list(self.client.QueryItems(self.coll_link, body, opts))

    def test_order_by_and_top(self):
        self.assertEqual(self.q("SELECT VALUE c.id FROM c ORDER BY c.id DESC"),
                         ["f%02d" % i for i in reversed(range(self.N))])
        self.assertEqual(self.q("SELECT TOP 3 VALUE c.id FROM c WHERE c.x >= @x ORDER BY c.id",
                                [{"name": "@x", "value": 2}]),
                         ["f02", "f03", "f06"])

    def test_order_by_paged_is_the_same_at_every_page_size(self):
        want = self.q("SELECT c.id, c.x FROM c ORDER BY c.x DESC")
        self.assertEqual(len(want), self.N)
        self.assertEqual([r["x"] for r in want], sorted((i % 4 for i in range(self.N)), reverse=True))
        for size in (1, 4):
            it = self.client.QueryItems(self.coll_link, "SELECT c.id, c.x FROM c ORDER BY c.x DESC",
                                        {"enableCrossPartitionQuery": True, "maxItemCount": size})
            got = []
            while True:
                block = it.fetch_next_block()
                if not block:
                    break
                self.assertLessEqual(len(block), size)
                got.extend(block)
            self.assertEqual(got, want)

    def test_aggregates_group_by_distinct(self):
        self.assertEqual(self.q("SELECT VALUE COUNT(1) FROM c"), [self.N])
        self.assertEqual(self.q("SELECT VALUE SUM(c.x) FROM c"), [sum(i % 4 for i in range(self.N))])
        self.assertEqual(self.q("SELECT VALUE MAX(c.id) FROM c WHERE c.pk = 'p1'"), ["f16"])
        groups = self.q("SELECT c.x, COUNT(1) AS n FROM c GROUP BY c.x")
        self.assertEqual(sorted((g["x"], g["n"]) for g in groups),
                         [(x, sum(1 for i in range(self.N) if i % 4 == x)) for x in range(4)])
        self.assertEqual(sorted(self.q("SELECT DISTINCT VALUE c.pk FROM c")), ["p0", "p1", "p2"])

    def test_projection_functions_and_single_partition(self):
        rows = self.q("SELECT c.id, UPPER(c.pk) AS P, c.x * 10 AS x10 FROM c WHERE c.id IN ('f04', 'f05')")
        self.assertEqual(sorted(rows, key=lambda r: r["id"]),
                         [{"id": "f04", "P": "P1", "x10": 0}, {"id": "f05", "P": "P2", "x10": 10}])
        rows = self.q("SELECT VALUE c.id FROM c WHERE STARTSWITH(c.id, 'f1') ORDER BY c.id",
                      partitionKey="p0", enableCrossPartitionQuery=False)
        self.assertEqual(rows, ["f12", "f15"])

    def test_bad_query_is_400_with_a_position(self):
        e = self.assertStatus(400, self.q, "SELECT * FROM c WHERE c.x = = 1")
        self.assertIn("column", str(e))
        e = self.assertStatus(400, self.q, "SELECT NOSUCHFN(c.x) FROM c")
        self.assertIn("NOSUCHFN", str(e))


class VerifiedTLS(unittest.TestCase):
    def test_client_with_the_server_certificate_as_ca(self):
        if not SERVER.cert_path:
            self.fail("no certificate path from the server")
        policy = documents.ConnectionPolicy()
        policy.SSLConfiguration = documents.SSLConfiguration()
        policy.SSLConfiguration.SSLCaCerts = SERVER.cert_path
        # Through "localhost": the SDK verifies only hosts other than
        # 127.0.0.1, so this also checks the certificate's DNS:localhost name.
        client = cosmos_client.CosmosClient("https://localhost:%d" % SERVER.port, {"masterKey": SERVER.master_key}, policy)
        dbs = list(client.ReadDatabases())
        self.assertIsInstance(dbs, list)


if __name__ == "__main__":
    unittest.main(verbosity=2)
