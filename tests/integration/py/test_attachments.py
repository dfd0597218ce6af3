"""Attachments and media through Debian's python3-azure-cosmos 3.1.1 (run with
/usr/bin/python3): the real SDK against the real atrestd over TLS.

Covers CreateAttachmentAndUploadMedia, UpsertAttachmentAndUploadMedia,
ReadAttachment, ReadAttachments (paged), ReplaceAttachment, DeleteAttachment,
ReadMedia (buffered and streamed), UpdateMedia, CreateAttachment and
UpsertAttachment with an external media link; a few-MB and a 100 MB media
streamed both ways with the server's memory watched; what deleting an
attachment, a document or a container does to the sealed blobs; the error
statuses; a read-only key; no plaintext on disk; a tampered chunk.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import io
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import azure.cosmos.cosmos_client as cosmos_client  # noqa: E402
import azure.cosmos.documents as documents  # noqa: E402
import azure.cosmos.errors as errors  # noqa: E402

import harness  # noqa: E402

READONLY_KEY = base64.b64encode(hashlib.sha512(b"atrest attachments ro").digest()).decode()
CANARY = "ATT-CANARY-" + uuid.uuid4().hex
SANITIZED = os.environ.get("ATREST_SANITIZED") == "1"


def uid(prefix=""):
    return prefix + uuid.uuid4().hex[:12]


def blob_files(server):
    d = os.path.join(server.data_dir, "media")
    if not os.path.isdir(d):
        return set()
    return {f for f in os.listdir(d) if f.endswith(".blob")}


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Pattern:
    """n bytes of a seeded pattern, produced as they are read (never held).
    A plain object with read() and len(): requests sends it with a
    Content-Length, block by block (an io.RawIOBase would be iterated by
    lines, which is very slow)."""

    def __init__(self, n, seed=b"atrest"):
        self.n, self.pos = n, 0
        self.block = hashlib.sha512(seed).digest() * 16384  # 1 MiB
        self.sha = hashlib.sha256()

    def __len__(self):
        return self.n

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.n - self.pos
        size = min(size, self.n - self.pos, 1 << 20)
        off = self.pos % len(self.block)
        out = self.block[off:off + size]
        if len(out) < size:
            out += self.block[:size - len(out)]
        self.pos += len(out)
        self.sha.update(out)
        return out


class ServerCase(unittest.TestCase):
    """One server per class; a partitioned container "c" in its own database."""

    extra_args = ("--readonly-key", READONLY_KEY)

    @classmethod
    def setUpClass(cls):
        warnings.simplefilter("ignore")  # requests warns about unverified localhost TLS
        cls.server = harness.Server(extra_args=cls.extra_args)
        cls.client = cosmos_client.CosmosClient(cls.server.endpoint,
                                                {"masterKey": cls.server.master_key})
        policy = documents.ConnectionPolicy()
        policy.MediaReadMode = documents.MediaReadMode.Streamed
        cls.streamer = cosmos_client.CosmosClient(
            cls.server.endpoint, {"masterKey": cls.server.master_key}, policy)
        cls.db_link = "dbs/" + cls.client.CreateDatabase({"id": uid("attdb")})["id"]
        cls.client.CreateContainer(
            cls.db_link, {"id": "c", "partitionKey": {"paths": ["/pk"], "kind": "Hash"}})
        cls.coll_link = cls.db_link + "/colls/c"

    @classmethod
    def tearDownClass(cls):
        problems = cls.server.stop_and_check()
        cls.server.cleanup()
        if problems:
            raise AssertionError("\n".join(problems))

    def new_doc(self, pk="p1"):
        d = self.client.CreateItem(self.coll_link, {"id": uid("doc"), "pk": pk})
        return self.coll_link + "/docs/" + d["id"]

    def upload(self, doc_link, data, slug=None, content_type="application/octet-stream",
               pk="p1", upsert=False):
        opts = {"slug": slug or uid("att"), "contentType": content_type, "partitionKey": pk}
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        fn = (self.client.UpsertAttachmentAndUploadMedia if upsert
              else self.client.CreateAttachmentAndUploadMedia)
        return fn(doc_link, stream, opts)

    def read_streamed(self, media_link):
        raw = self.streamer.ReadMedia(media_link)
        h, n = hashlib.sha256(), 0
        while True:
            b = raw.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        return n, h.hexdigest()

    def assertStatus(self, status, fn, *args, **kw):
        with self.assertRaises(errors.HTTPFailure) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.status_code, status, str(cm.exception))
        self.assertIn('"code"', str(cm.exception))  # a Cosmos error body
        return cm.exception

    def wait_for(self, pred, what, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for " + what)


class Attachments(ServerCase):
    def test_upload_read_media_and_metadata(self):
        doc = self.new_doc()
        data = os.urandom(3 * 1024 * 1024 + 12345)  # a few MB, not a chunk multiple
        a = self.upload(doc, data, slug="photo.jpg", content_type="image/jpeg")
        self.assertEqual(a["id"], "photo.jpg")
        self.assertEqual(a["contentType"], "image/jpeg")
        self.assertTrue(a["media"].startswith("/media/"))
        for p in ("_rid", "_self", "_etag", "_ts"):
            self.assertIn(p, a)
        self.assertTrue(a["_self"].endswith("/attachments/%s/" % a["_rid"]))
        self.assertEqual(self.client.last_response_headers.get("etag"), a["_etag"])
        link = doc + "/attachments/photo.jpg"
        got = self.client.ReadAttachment(link, {"partitionKey": "p1"})
        self.assertEqual(got, a)
        n, sha = self.read_streamed(a["media"])
        self.assertEqual((n, sha), (len(data), hashlib.sha256(data).hexdigest()))
        self.assertEqual(self.streamer.last_response_headers.get("Content-Type"), "image/jpeg")
        # Buffered mode (the default) returns text: an ASCII media.
        t = self.upload(doc, b"plain text media\n" * 1000, content_type="text/plain")
        self.assertEqual(self.client.ReadMedia(t["media"]), "plain text media\n" * 1000)
        # An empty media is a media too.
        e = self.upload(doc, b"")
        self.assertEqual(self.client.ReadMedia(e["media"]), "")

    def test_upsert_media_and_update_media(self):
        doc = self.new_doc()
        a = self.upload(doc, b"version one", slug="u", upsert=True)
        self.assertEqual(self.client.ReadMedia(a["media"]), "version one")
        before = blob_files(self.server)
        b = self.upload(doc, b"version two", slug="u", upsert=True, content_type="text/plain")
        self.assertEqual(b["media"], a["media"])  # the link stays
        self.assertNotEqual(b["_etag"], a["_etag"])
        self.assertEqual(b["contentType"], "text/plain")
        self.assertEqual(self.client.ReadMedia(a["media"]), "version two")
        self.wait_for(lambda: len(blob_files(self.server)) == len(before), "the old blob to go")
        # UpdateMedia: new bytes, new blob, old one deleted, etag changes.
        self.client.UpdateMedia(a["media"], io.BytesIO(b"version three"),
                                {"contentType": "text/x-three"})
        self.assertEqual(self.client.ReadMedia(a["media"]), "version three")
        self.wait_for(lambda: len(blob_files(self.server)) == len(before), "the old blob to go")
        r = self.client.ReadAttachment(doc + "/attachments/u", {"partitionKey": "p1"})
        self.assertEqual(r["contentType"], "text/x-three")
        self.assertNotEqual(r["_etag"], b["_etag"])
        # If-Match on UpdateMedia.
        self.assertStatus(412, self.client.UpdateMedia, a["media"], io.BytesIO(b"x"),
                          {"accessCondition": {"type": "IfMatch", "condition": b["_etag"]}})
        self.client.UpdateMedia(a["media"], io.BytesIO(b"version four"),
                                {"accessCondition": {"type": "IfMatch", "condition": r["_etag"]}})
        self.assertEqual(self.client.ReadMedia(a["media"]), "version four")

    def test_external_media_link(self):
        doc = self.new_doc()
        att = {"id": "ext", "contentType": "image/png", "media": "https://example.com/x.png"}
        a = self.client.CreateAttachment(doc, att, {"partitionKey": "p1"})
        self.assertEqual(a["media"], "https://example.com/x.png")
        self.assertEqual(a["contentType"], "image/png")
        self.assertStatus(409, self.client.CreateAttachment, doc, att, {"partitionKey": "p1"})
        att["contentType"] = "image/gif"
        u = self.client.UpsertAttachment(doc, att, {"partitionKey": "p1"})
        self.assertEqual(u["contentType"], "image/gif")
        self.assertEqual(u["_rid"], a["_rid"])
        new = self.client.UpsertAttachment(doc, dict(att, id="ext2"), {"partitionKey": "p1"})
        self.assertNotEqual(new["_rid"], a["_rid"])
        got = self.client.ReadAttachment(doc + "/attachments/ext", {"partitionKey": "p1"})
        self.assertEqual(got["media"], "https://example.com/x.png")
        # Another attachment's /media link is just a link here: stored as given.
        other = self.upload(doc, b"other bytes")
        x = self.client.ReplaceAttachment(doc + "/attachments/ext",
                                          dict(att, media=other["media"]), {"partitionKey": "p1"})
        self.assertEqual(x["media"], other["media"])
        self.assertEqual(self.client.ReadMedia(x["media"]), "other bytes")

    def test_replace_attachment(self):
        doc = self.new_doc()
        a = self.upload(doc, b"keep me", slug="r1", content_type="text/plain")
        link = doc + "/attachments/r1"
        a2 = dict(a, contentType="text/markdown", note="hello")
        r = self.client.ReplaceAttachment(link, a2, {"partitionKey": "p1"})
        self.assertEqual(r["contentType"], "text/markdown")
        self.assertEqual(r["note"], "hello")
        self.assertEqual(r["media"], a["media"])  # its own /media link: the media stays
        self.assertEqual(self.client.ReadMedia(r["media"]), "keep me")
        # A stale etag: 412; the current one: fine.
        self.assertStatus(412, self.client.ReplaceAttachment, link, a2,
                          {"partitionKey": "p1",
                           "accessCondition": {"type": "IfMatch", "condition": a["_etag"]}})
        self.client.ReplaceAttachment(link, a2, {"partitionKey": "p1", "accessCondition":
                                                 {"type": "IfMatch", "condition": r["_etag"]}})
        # Rename.
        renamed = self.client.ReplaceAttachment(link, dict(a2, id="r2"), {"partitionKey": "p1"})
        self.assertEqual(renamed["id"], "r2")
        self.assertStatus(404, self.client.ReadAttachment, link, {"partitionKey": "p1"})
        # Pointing it elsewhere retires the managed blob.
        before = blob_files(self.server)
        self.client.ReplaceAttachment(doc + "/attachments/r2",
                                      dict(a2, id="r2", media="https://example.com/y"),
                                      {"partitionKey": "p1"})
        self.wait_for(lambda: len(blob_files(self.server)) == len(before) - 1, "blob removal")
        self.assertStatus(404, self.client.ReadMedia, a["media"])

    def test_feed_paging(self):
        doc = self.new_doc()
        ids = ["f%02d" % i for i in range(7)]
        for i in ids:
            self.upload(doc, i.encode(), slug=i)
        it = self.client.ReadAttachments(doc, {"partitionKey": "p1", "maxItemCount": 3})
        self.assertEqual([a["id"] for a in it], ids)
        it = self.client.ReadAttachments(doc, {"partitionKey": "p1", "maxItemCount": 3})
        first = it.fetch_next_block()
        self.assertEqual(len(first), 3)
        self.assertTrue(self.client.last_response_headers.get("x-ms-continuation"))
        # Another document's attachments are its own.
        other = self.new_doc()
        self.assertEqual(list(self.client.ReadAttachments(other, {"partitionKey": "p1"})), [])

    def test_delete_attachment_removes_blob(self):
        doc = self.new_doc()
        a = self.upload(doc, os.urandom(200000), slug="gone")
        before = blob_files(self.server)
        link = doc + "/attachments/gone"
        self.assertStatus(412, self.client.DeleteAttachment, link,
                          {"partitionKey": "p1",
                           "accessCondition": {"type": "IfMatch", "condition": '"stale"'}})
        self.client.DeleteAttachment(link, {"partitionKey": "p1"})
        self.wait_for(lambda: len(blob_files(self.server)) == len(before) - 1, "blob removal")
        self.assertStatus(404, self.client.ReadAttachment, link, {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadMedia, a["media"])
        self.assertStatus(404, self.client.DeleteAttachment, link, {"partitionKey": "p1"})

    def test_delete_document_removes_attachments(self):
        doc = self.new_doc(pk="p2")
        a = self.upload(doc, b"one", slug="x1", pk="p2")
        self.upload(doc, b"two", slug="x2", pk="p2")
        self.client.CreateAttachment(doc, {"id": "x3", "contentType": "a/b", "media": "http://e/"},
                                     {"partitionKey": "p2"})
        before = blob_files(self.server)
        self.client.DeleteItem(doc, {"partitionKey": "p2"})
        self.wait_for(lambda: len(blob_files(self.server)) == len(before) - 2, "blob removal")
        self.assertStatus(404, self.client.ReadMedia, a["media"])
        self.assertStatus(404, self.client.ReadAttachment, doc + "/attachments/x1",
                          {"partitionKey": "p2"})
        # A new document of that id starts without attachments.
        self.client.CreateItem(self.coll_link, {"id": doc.rsplit("/", 1)[1], "pk": "p2"})
        self.assertEqual(list(self.client.ReadAttachments(doc, {"partitionKey": "p2"})), [])

    def test_partition_key_scopes_the_document(self):
        doc_id = uid("doc")
        self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "A"})
        self.client.CreateItem(self.coll_link, {"id": doc_id, "pk": "B"})
        doc = self.coll_link + "/docs/" + doc_id
        self.upload(doc, b"in A", slug="s", pk="A")
        self.assertStatus(404, self.client.ReadAttachment, doc + "/attachments/s",
                          {"partitionKey": "B"})
        self.upload(doc, b"in B", slug="s", pk="B")  # no conflict: another document
        self.assertStatus(400, self.client.ReadAttachment, doc + "/attachments/s", {})

    def test_errors(self):
        doc = self.new_doc()
        missing = self.coll_link + "/docs/" + uid("nodoc")
        self.assertStatus(404, self.upload, missing, b"x")
        self.assertStatus(404, self.client.CreateAttachment, missing,
                          {"id": "a", "contentType": "x/y", "media": "http://e/"},
                          {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadAttachment, doc + "/attachments/nope",
                          {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadAttachments(missing, {"partitionKey": "p1"})
                          .fetch_next_block)
        self.assertStatus(404, self.client.ReplaceAttachment, doc + "/attachments/nope",
                          {"id": "nope", "contentType": "x/y", "media": "http://e/"},
                          {"partitionKey": "p1"})
        self.assertStatus(404, self.client.ReadMedia, "/media/AAAAAAAAAAAAAAAAAAAAAAAA")
        self.assertStatus(404, self.client.ReadMedia, "/media/" + "Q" * 24)
        self.assertStatus(404, self.client.UpdateMedia, "/media/" + "Q" * 24, io.BytesIO(b"x"))
        self.assertStatus(404, self.upload, self.db_link + "/colls/nocoll/docs/d", b"x")
        self.upload(doc, b"x", slug="dup")
        self.assertStatus(409, self.upload, doc, b"y", slug="dup")
        self.assertStatus(400, self.upload, doc, b"x", slug="bad/slug")
        self.assertStatus(400, self.client.CreateAttachment, doc, {"id": "nomedia"},
                          {"partitionKey": "p1"})
        self.assertStatus(400, self.client.CreateAttachment, doc, {"media": "http://e/"},
                          {"partitionKey": "p1"})
        # A partitioned container wants the partition key.
        self.assertStatus(400, self.client.CreateAttachmentAndUploadMedia, doc, io.BytesIO(b"x"),
                          {"slug": "nopk"})

    def test_bad_json_and_too_large(self):
        doc = self.new_doc()
        # Malformed JSON, and an id the SDK would refuse to send.
        for body in (b"{not json", b'{"id":"a/b","contentType":"x/y","media":"http://e/"}'):
            conn, headers = self.raw(
                "POST", doc + "/attachments", "attachments", doc,
                {"Content-Type": "application/json", "x-ms-documentdb-partitionkey": '["p1"]'})
            conn.request("POST", "/" + doc + "/attachments", body=body, headers=headers)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 400)
            self.assertIn(b'"BadRequest"', resp.read())
            conn.close()
        # Beyond the media limit (2 GiB): 413 before any byte is sent.
        conn, headers = self.raw(
            "POST", doc + "/attachments", "attachments", doc,
            {"Content-Type": "application/octet-stream", "Slug": "huge",
             "x-ms-documentdb-partitionkey": '["p1"]', "Content-Length": str(3 << 30)})
        conn.putrequest("POST", "/" + doc + "/attachments", skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertIn(b"RequestEntityTooLarge", resp.read())
        conn.close()

    def test_chunked_upload(self):
        # No Content-Length: Transfer-Encoding chunked, as a client streaming
        # media of unknown size sends it.
        doc = self.new_doc()
        data = os.urandom(700001)
        conn, headers = self.raw(
            "POST", doc + "/attachments", "attachments", doc,
            {"Content-Type": "application/octet-stream", "Slug": "chunked",
             "x-ms-documentdb-partitionkey": '["p1"]'})
        pieces = (data[i:i + 50000] for i in range(0, len(data), 50000))
        conn.request("POST", "/" + doc + "/attachments", body=pieces, headers=headers,
                     encode_chunked=True)
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 201, body)
        conn.close()
        a = self.client.ReadAttachment(doc + "/attachments/chunked", {"partitionKey": "p1"})
        self.assertEqual(self.read_streamed(a["media"]),
                         (len(data), hashlib.sha256(data).hexdigest()))

    def raw(self, verb, path, rtype, link, extra, key=None):
        date = datetime.datetime.utcnow().strftime("%a, %d %b %Y %H:%M:%S GMT")
        text = "%s\n%s\n%s\n%s\n\n" % (verb.lower(), rtype, link, date.lower())
        k = base64.b64decode(key or self.server.master_key)
        sig = base64.b64encode(hmac.new(k, text.encode(), hashlib.sha256).digest()).decode()
        headers = {"x-ms-date": date, "x-ms-version": "2018-09-17",
                   "authorization": urllib.parse.quote("type=master&ver=1.0&sig=" + sig, "")}
        headers.update(extra)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.server.port, context=ctx,
                                           timeout=30), headers

    def test_readonly_key(self):
        doc = self.new_doc()
        a = self.upload(doc, b"readable", slug="ro")
        ro = cosmos_client.CosmosClient(self.server.endpoint, {"masterKey": READONLY_KEY})
        self.assertEqual(ro.ReadMedia(a["media"]), "readable")
        self.assertEqual(ro.ReadAttachment(doc + "/attachments/ro", {"partitionKey": "p1"})["id"],
                         "ro")
        self.assertStatus(403, ro.CreateAttachmentAndUploadMedia, doc, io.BytesIO(b"x"),
                          {"slug": "no", "partitionKey": "p1"})
        self.assertStatus(403, ro.UpdateMedia, a["media"], io.BytesIO(b"x"))
        self.assertStatus(403, ro.DeleteAttachment, doc + "/attachments/ro",
                          {"partitionKey": "p1"})
        self.assertStatus(403, ro.CreateAttachment, doc,
                          {"id": "n", "contentType": "x/y", "media": "http://e/"},
                          {"partitionKey": "p1"})
        self.assertEqual(self.client.ReadMedia(a["media"]), "readable")
        # A wrong key: 401, for media too.
        bad = base64.b64encode(b"\x01" * 64).decode()
        nobody = cosmos_client.CosmosClient(self.server.endpoint, {"masterKey": bad})
        self.assertStatus(401, nobody.ReadMedia, a["media"])

    def test_large_media_streams(self):
        n = 100 * 1024 * 1024 + 4321  # over 100 MB, not a chunk multiple
        doc = self.new_doc()
        pid = self.server.proc.pid
        base = rss_kb(pid)
        peak = [base]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.02)

        t = threading.Thread(target=watch)
        t.start()
        try:
            src = Pattern(n)
            a = self.upload(doc, src, slug="big")
            got_n, got_sha = self.read_streamed(a["media"])
        finally:
            stop.set()
            t.join()
        self.assertEqual((got_n, got_sha), (n, src.sha.hexdigest()))
        grew_mb = (peak[0] - base) / 1024.0
        print("\n  100 MB media: server RSS %.0f MB before, peak %.0f MB (+%.0f MB)"
              % (base / 1024.0, peak[0] / 1024.0, grew_mb), file=sys.stderr)
        if not SANITIZED:  # ASan's quarantine keeps freed blocks resident
            self.assertLess(grew_mb, 24, "the server held the media in memory")
        sealed = [f for f in blob_files(self.server)
                  if os.path.getsize(os.path.join(self.server.data_dir, "media", f)) > n]
        self.assertEqual(len(sealed), 1)


class DropContainer(ServerCase):
    def test_drop_container_deletes_media(self):
        coll = self.db_link + "/colls/drop"
        self.client.CreateContainer(self.db_link, {"id": "drop"})
        self.client.CreateItem(coll, {"id": "d"})
        a = self.client.CreateAttachmentAndUploadMedia(coll + "/docs/d", io.BytesIO(b"bye"),
                                                       {"slug": "a"})
        self.assertEqual(self.client.ReadMedia(a["media"]), "bye")
        keep = self.upload(self.new_doc(), b"stays")
        before = blob_files(self.server)
        self.client.DeleteContainer(coll)
        self.wait_for(lambda: len(blob_files(self.server)) == len(before) - 1, "blob removal")
        self.assertStatus(404, self.client.ReadMedia, a["media"])
        self.assertEqual(self.client.ReadMedia(keep["media"]), "stays")


class Restart(ServerCase):
    def test_media_survives_restart_and_leftovers_go(self):
        doc = self.new_doc()
        data = os.urandom(300000)
        a = self.upload(doc, data, slug="kept")
        media = os.path.join(self.server.data_dir, "media")
        (mine,) = blob_files(self.server)
        # What a crash can leave: an upload stored but never committed, and
        # the blobs of a container whose drop was interrupted.
        prefix = mine.split("%2F")[0]
        leftovers = [prefix + "%2F" + "ab" * 16 + ".blob", "c-0000fffe%2F" + "cd" * 16 + ".blob"]
        for name in leftovers:
            with open(os.path.join(media, mine), "rb") as src, \
                    open(os.path.join(media, name), "wb") as dst:
                dst.write(src.read())
        self.server.restart()
        self.assertEqual(blob_files(self.server), {mine})
        self.assertIn("removed 2 media blobs", self.server.log())
        st = cosmos_client.CosmosClient(self.server.endpoint,
                                        {"masterKey": self.server.master_key},
                                        self.streamer.connection_policy)
        raw = st.ReadMedia(a["media"])
        self.assertEqual(raw.read(), data)


def cli_binary():
    return os.environ.get("ATREST_CLI") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "build", "atrest")


class DataKeyRotation(ServerCase):
    """A data-key rotation (docs/kms.md) re-encrypts the container's pages and
    destroys its old DEKs; the media keys, wrapped under keys derived from
    those DEKs, are rewrapped first, so every media stays readable: through
    the running server (its control socket) and offline (the CLI alone)."""

    extra_args = ("--readonly-key", READONLY_KEY, "--reencrypt-mbps", "0")

    def versions(self):
        out = subprocess.run([cli_binary(), "keys", "status", "--data-dir", self.server.data_dir,
                              "--key-dir", self.server.key_dir], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return {m.group(1): (int(m.group(2)), int(m.group(3)))
                for m in re.finditer(r"^\s+(\S+)\s+DEK versions outer (\d+)\.\.(\d+);",
                                     out.stdout, re.M)}

    def rotate(self, *extra):
        out = subprocess.run([cli_binary(), "keys", "rotate-data-keys", "--data-dir",
                              self.server.data_dir, *extra], capture_output=True, text=True,
                             timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("old ones are destroyed", out.stderr)

    def test_media_readable_after_old_deks_are_destroyed(self):
        doc = self.new_doc()
        data = os.urandom(700000)
        a = self.upload(doc, data, slug="rot")
        self.rotate("--wait")
        v = self.versions()
        self.assertTrue(v and all(x == (2, 2) for x in v.values()), v)
        self.assertEqual(self.read_streamed(a["media"]),
                         (len(data), hashlib.sha256(data).hexdigest()))
        b = self.upload(doc, data[:1000], slug="after")
        # offline: no server on the folder, the CLI rotates it alone
        problems = self.server.stop_and_check()
        self.assertFalse(problems, problems)
        self.rotate("--key-dir", self.server.key_dir)
        self.server._launch()
        v = self.versions()
        self.assertTrue(v and all(x == (3, 3) for x in v.values()), v)
        st = cosmos_client.CosmosClient(self.server.endpoint,
                                        {"masterKey": self.server.master_key},
                                        self.streamer.connection_policy)
        self.assertEqual(st.ReadMedia(a["media"]).read(), data)
        self.assertEqual(st.ReadMedia(b["media"]).read(), data[:1000])
        type(self).client = cosmos_client.CosmosClient(self.server.endpoint,
                                                       {"masterKey": self.server.master_key})


BK_DIR = tempfile.mkdtemp(prefix="atrest-it-bk-")


class BackupRestore(ServerCase):
    """A backup holds the media of every attachment (docs/backup.md, "Media"):
    restored into a new account, the media read as they were at backup time,
    though the live account replaced and deleted them since; the backup folder
    holds no plaintext; a flipped byte in a backed-up media blob makes the
    restore refuse (exit 1) and leave nothing behind."""

    extra_args = ("--readonly-key", READONLY_KEY, "--backup-target", "file:" + BK_DIR)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if not os.environ.get("ATREST_KEEP_TMP"):
            shutil.rmtree(BK_DIR, ignore_errors=True)

    def cli(self, *args, ok=True):
        out = subprocess.run([cli_binary(), *args], capture_output=True, text=True, timeout=300)
        if ok:
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def restore_args(self, root):
        return ("backup", "restore", "--target", "file:" + BK_DIR, "--key-dir",
                self.server.key_dir, "--to", os.path.join(root, "data"), "--to-key-dir",
                os.path.join(root, "keys"))

    def test_media_restored_as_backed_up(self):
        doc = self.new_doc()
        small = (CANARY + "-media ").encode() * 50
        big = os.urandom(300000)
        a = self.upload(doc, small, slug="small")
        b = self.upload(doc, big, slug="big")
        self.client.CreateAttachment(doc, {"id": "ext", "contentType": "image/png",
                                           "media": "https://example.com/x.png"},
                                     {"partitionKey": "p1"})
        out = self.cli("backup", "now", "--endpoint", self.server.endpoint, "--master-key",
                       self.server.master_key, "--insecure")
        backup_id = out.stdout.strip().split()[-1]
        # The live account moves on: new bytes for one, the other deleted.
        self.client.UpdateMedia(a["media"], io.BytesIO(b"replaced"),
                                {"contentType": "application/octet-stream"})
        self.client.DeleteAttachment(doc + "/attachments/big", {"partitionKey": "p1"})
        # The backup folder: ciphertext only, media copies included.
        names = os.listdir(BK_DIR)
        self.assertEqual(len([n for n in names if "%2Fm%2F" in n]), 2, names)
        for n in names:
            with open(os.path.join(BK_DIR, n), "rb") as fh:
                self.assertNotIn(CANARY.encode(), fh.read(), n)

        root = tempfile.mkdtemp(prefix="atrest-it-py-restored-")
        out = self.cli(*self.restore_args(root), "--backup", backup_id)
        self.assertIn("restored the media of 2 attachments", out.stdout)
        restored = harness.Server(root=root)
        try:
            st = cosmos_client.CosmosClient(restored.endpoint,
                                            {"masterKey": restored.master_key},
                                            self.streamer.connection_policy)
            plain = cosmos_client.CosmosClient(restored.endpoint,
                                               {"masterKey": restored.master_key})
            self.assertEqual(st.ReadMedia(a["media"]).read(), small)
            self.assertEqual(st.ReadMedia(b["media"]).read(), big)
            atts = {x["id"]: x for x in plain.ReadAttachments(doc, {"partitionKey": "p1"})}
            self.assertEqual(set(atts), {"small", "big", "ext"})
            self.assertEqual(atts["ext"]["media"], "https://example.com/x.png")
            # The restored account's own media work: a new upload reads back.
            c = plain.CreateAttachmentAndUploadMedia(
                doc, io.BytesIO(b"new in the restored account"),
                {"slug": "new", "contentType": "text/plain", "partitionKey": "p1"})
            self.assertEqual(st.ReadMedia(c["media"]).read(), b"new in the restored account")
        finally:
            problems = restored.stop_and_check()
            restored.cleanup()
        self.assertFalse(problems, problems)
        # The live account still has its own state.
        self.assertEqual(self.client.ReadMedia(a["media"]), "replaced")

        # A flipped byte in a backed-up media blob: refused, nothing left.
        (big_copy,) = [n for n in os.listdir(BK_DIR) if "%2Fm%2F" in n and
                       os.path.getsize(os.path.join(BK_DIR, n)) > 200000]
        with open(os.path.join(BK_DIR, big_copy), "r+b") as fh:
            fh.seek(80 + 16 + 3 * (65536 + 16) + 7)
            x = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([x[0] ^ 1]))
        root = tempfile.mkdtemp(prefix="atrest-it-py-refused-")
        out = self.cli(*self.restore_args(root), "--backup", backup_id, ok=False)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("media", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "data")))
        self.assertFalse(os.path.exists(os.path.join(root, "keys")))
        shutil.rmtree(root, ignore_errors=True)


class NoPlaintext(ServerCase):
    """A canary in media bytes, an attachment id and its properties appears in
    no file under the data folder (media folder included) or the key folder,
    while the server runs and after it stopped, nor in the server's log."""

    def scan(self):
        hits = []
        needle = CANARY.encode()
        for top in (self.server.data_dir, self.server.key_dir):
            for d, _, files in os.walk(top):
                for f in files:
                    p = os.path.join(d, f)
                    try:
                        with open(p, "rb") as fh:
                            if needle in fh.read():
                                hits.append(p)
                    except OSError:
                        pass
        return hits

    def test_no_canary_on_disk(self):
        doc = self.new_doc()
        body = (CANARY + " media bytes ") * 20000  # ~1 MB, across many chunks
        a = self.upload(doc, body.encode(), slug=CANARY, content_type="text/" + CANARY)
        self.client.CreateAttachment(doc, {"id": CANARY + "-ext", "contentType": "x/y",
                                           "media": "https://example.com/" + CANARY},
                                     {"partitionKey": "p1"})
        self.assertEqual(self.client.ReadMedia(a["media"]), body)
        self.client.UpdateMedia(a["media"], io.BytesIO((CANARY * 5000).encode()))
        self.assertEqual(blob_files(self.server) != set(), True)
        self.assertEqual(self.scan(), [])
        problems = self.server.stop_and_check()
        self.assertEqual(problems, [])
        self.assertEqual(self.scan(), [])
        self.assertNotIn(CANARY, self.server.log())  # no user data in the log either
        # Restart so tearDownClass finds a server to stop.
        type(self).server = harness.Server(extra_args=self.extra_args)


class Tamper(ServerCase):
    def blob_of(self, before):
        new = blob_files(self.server) - before
        self.assertEqual(len(new), 1)
        return os.path.join(self.server.data_dir, "media", new.pop())

    def flip(self, path, off):
        with open(path, "r+b") as fh:
            fh.seek(off)
            b = fh.read(1)
            fh.seek(off)
            fh.write(bytes([b[0] ^ 0x40]))

    def test_flipped_byte_fails_the_read(self):
        file_hdr, media_hdr, rec = 80, 16, 65536 + 16
        data = b"0123456789abcdef" * 40000  # 640000 bytes: 10 chunks
        doc = self.new_doc()
        before = blob_files(self.server)
        a = self.upload(doc, data, slug="t0")
        path = self.blob_of(before)
        self.assertEqual(self.client.ReadMedia(a["media"]), data.decode())
        # Chunk 0: refused before any byte is sent, with a Cosmos error.
        self.flip(path, file_hdr + media_hdr + 100)
        e = self.assertStatus(500, self.client.ReadMedia, a["media"])
        self.assertIn("integrity", str(e))
        self.flip(path, file_hdr + media_hdr + 100)
        self.assertEqual(self.client.ReadMedia(a["media"]), data.decode())
        # Chunk 7: the response has begun; the connection is cut, so the
        # client never gets the whole body, and never wrong bytes.
        self.flip(path, file_hdr + media_hdr + 7 * rec + 5)
        raw = self.streamer.ReadMedia(a["media"])
        got, failed = b"", False
        try:
            while True:
                b = raw.read(65536)
                if not b:
                    break
                got += b
        except Exception:  # urllib3 ProtocolError / IncompleteRead
            failed = True
        self.assertTrue(failed or len(got) < len(data), "a damaged chunk was served")
        self.assertEqual(got, data[:len(got)])  # what came is the authentic prefix
        self.assertLessEqual(len(got), 7 * 65536)
        # The blob truncated at a chunk boundary: refused at once.
        self.flip(path, file_hdr + media_hdr + 7 * rec + 5)
        with open(path, "r+b") as fh:
            fh.truncate(file_hdr + media_hdr + 5 * rec)
        self.assertStatus(500, self.client.ReadMedia, a["media"])


if __name__ == "__main__":
    unittest.main()
