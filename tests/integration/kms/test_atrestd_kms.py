#!/usr/bin/python3
"""atrestd with the key service and a customer-managed key, end to end.

Real parts only: two atrest-kms daemons (the operator's service, holding
the service key, and the customer's, holding the customer-managed key),
the real atrestd with --kms and --cmk, Debian's azure-cosmos 3.1.1 as the
client and azure-keyvault-keys 4.8 to disable, rotate and delete keys.
The tests run in name order and share the account (its state carries over):

  01 write documents through the SDK
  02 disable the customer key version   -> 403 (4002) within 60 s, back within 60 s
  03 revoke atrestd's access             -> 403 (4002), back after grant
  04 delete the customer key             -> 403 (4003), back after recover
  05 stop the customer's key service     -> serves during the grace period, then 403 (4004)
  06 stop the operator's key service     -> serves during the grace period, then 503
  07 writes in flight during revocation  -> each acknowledged write is there afterwards
  08 rotate both keys, disable the old versions -> still serving (rewrapped)
  09 restart on the same folder; refusals without --kms / with another --cmk
  10 a new account with an admin token creates its service key

ATREST_BIN and ATREST_KMS_BIN name the binaries; ATREST_KEEP_TMP keeps the
folder.
"""
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))

import azure.cosmos.cosmos_client as cosmos_client  # noqa: E402
import azure.cosmos.errors as cerrors  # noqa: E402
from azure.core.credentials import AccessToken  # noqa: E402
from azure.keyvault.keys import KeyClient  # noqa: E402

import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KMS_BIN = os.environ.get("ATREST_KMS_BIN") or os.path.join(ROOT, "build", "atrest-kms")
CLI_BIN = os.environ.get("ATREST_CLI") or os.path.join(os.path.dirname(KMS_BIN), "atrest")
CHECK_S = 1      # --cmk-check-seconds
GRACE_S = 5      # --kms-grace-seconds
LIMIT_S = 60     # what the issue promises for revocation and resumption
TMP = None
KMS_S = KMS_C = None
ATRESTD = None
TIMINGS = {}


class Cred:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kw):
        return AccessToken(self.token, int(time.time()) + 3600)


def kms_cli(*args):
    p = subprocess.run([KMS_BIN, *args], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("atrest-kms %s: %s %s" % (args, p.stdout, p.stderr))
    return p.stdout.strip()


class Kms:
    """One atrest-kms on a fixed port (so it can be restarted there)."""

    def __init__(self, name):
        self.dir = os.path.join(TMP, name)
        self.port = harness.free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.errlog = os.path.join(TMP, name + ".stderr")
        self.proc = None
        self.start()
        self.cert = os.path.join(self.dir, "tls", "server.crt")
        self.admin = kms_cli("token", "--data-dir", self.dir, "--identity", "ops", "--admin")
        self.app = kms_cli("token", "--data-dir", self.dir, "--identity", "atrestd")
        self.app_file = os.path.join(TMP, name + ".atrestd.token")
        with open(self.app_file, "w") as f:
            f.write(self.app + "\n")
        self.admin_file = os.path.join(TMP, name + ".admin.token")
        with open(self.admin_file, "w") as f:
            f.write(self.admin + "\n")

    def start(self):
        with open(self.errlog, "a") as err:
            self.proc = subprocess.Popen(
                [KMS_BIN, "--data-dir", self.dir, "--listen", "127.0.0.1:%d" % self.port],
                stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.time() + 30
        out = ""
        while "folder:" not in out:
            line = self.proc.stdout.readline()
            if not line or time.time() > deadline:
                raise AssertionError("atrest-kms did not start: " + out)
            out += line

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def keys(self):
        return KeyClient(self.url, Cred(self.admin), verify_challenge_resource=False,
                         connection_verify=self.cert)


class Atrestd:
    """atrestd on one data folder; can be restarted with other flags."""

    def __init__(self, data_dir, key_dir, args):
        self.data_dir, self.key_dir, self.args = data_dir, key_dir, list(args)
        self.proc = None
        self.n = 0

    def command(self, args=None):
        return [harness.server_binary(), "--data-dir", self.data_dir, "--key-dir", self.key_dir,
                "--listen", "127.0.0.1:%d" % self.port, "--log-requests",
                *(self.args if args is None else args)]

    def start(self, args=None):
        self.port = harness.free_port()
        self.n += 1
        self.log_path = os.path.join(TMP, "atrestd-%s-%d.log" % (os.path.basename(self.data_dir),
                                                                 self.n))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(args), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        # ready once it listens and has printed its banner (the banner comes
        # just after the listening socket opens: a slow, sanitized build can
        # be caught in between)
        while time.time() < deadline and self.proc.poll() is None:
            if harness._tcp_ready(self.port) and "atrestd: serving" in self.log():
                break
            time.sleep(0.05)
        else:
            raise AssertionError("atrestd did not start:\n" + self.log())
        self.endpoint = "https://127.0.0.1:%d" % self.port
        return self

    def run_expect_fail(self, args):
        self.port = harness.free_port()
        p = subprocess.run(self.command(args), capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("atrestd did not stop on SIGTERM")
        code = self.proc.returncode if self.proc else 0
        self.proc = None
        out = self.log()
        m = harness.SANITIZER_RE.search(out)
        assert not m, out[m.start():m.start() + 3000]
        assert code == 0, "atrestd exited %s:\n%s" % (code, out[-3000:])

    def client(self):
        return cosmos_client.CosmosClient(self.endpoint, {"masterKey": harness.EMULATOR_KEY})

    def account(self):
        import requests  # what azure-cosmos uses
        import base64, hashlib, hmac, email.utils
        date = email.utils.formatdate(usegmt=True).lower()
        text = "get\n\n\n%s\n\n" % date
        sig = base64.b64encode(hmac.new(base64.b64decode(harness.EMULATOR_KEY), text.encode(),
                                        hashlib.sha256).digest()).decode()
        auth = requests.utils.quote("type=master&ver=1.0&sig=" + sig, safe="")
        r = requests.get(self.endpoint + "/", verify=False, timeout=10,
                         headers={"x-ms-date": date, "authorization": auth,
                                  "x-ms-version": "2018-12-31"})
        r.raise_for_status()
        return r.json()


def setUpModule():
    global TMP, KMS_S, KMS_C, ATRESTD
    warnings.simplefilter("ignore")
    TMP = tempfile.mkdtemp(prefix="atrest-it-kms-")
    KMS_S = Kms("kms-service")
    KMS_C = Kms("kms-customer")
    # The operator's service key and the customer's key, granted to atrestd
    # with least privilege (no get: see docs/kms.md on CryptographyClient).
    KMS_S.keys().create_key("svc", "oct-HSM")
    kms_cli("grant", "--data-dir", KMS_S.dir, "--key", "svc", "--identity", "atrestd",
            "--permissions", "wrapKey,unwrapKey")
    KMS_C.keys().create_key("cmk", "oct-HSM")
    kms_cli("grant", "--data-dir", KMS_C.dir, "--key", "cmk", "--identity", "atrestd",
            "--permissions", "wrapKey,unwrapKey")
    args = ["--kms", KMS_S.url, "--kms-token-file", KMS_S.app_file, "--kms-key", "svc",
            "--kms-ca", KMS_S.cert, "--cmk", KMS_C.url + "/keys/cmk",
            "--cmk-token-file", KMS_C.app_file, "--cmk-ca", KMS_C.cert,
            "--cmk-check-seconds", str(CHECK_S),
            "--kms-grace-seconds", str(GRACE_S)]
    ATRESTD = Atrestd(os.path.join(TMP, "data"), os.path.join(TMP, "keys"), args).start()


def tearDownModule():
    try:
        if ATRESTD:
            ATRESTD.stop()
    finally:
        for k in (KMS_S, KMS_C):
            if k:
                k.stop()
        if TIMINGS:
            print("\nmeasured (seconds): " + json.dumps(TIMINGS, sort_keys=True), file=sys.stderr)
        if os.environ.get("ATREST_KEEP_TMP"):
            print("kept " + TMP, file=sys.stderr)
        else:
            shutil.rmtree(TMP, ignore_errors=True)


DB, COLL = "kmsdb", "c"
COLL_LINK = "dbs/%s/colls/%s" % (DB, COLL)
DOCS = {}  # id -> document as read back (system properties included)
MEDIA = {}  # "link" -> the /media link of an attachment, "text" -> its bytes


def read_all(client):
    out = {}
    for d in client.ReadItems(COLL_LINK):
        out[d["id"]] = d
    return out


def keys_status():
    """atrest keys status beside the running server: (exit code, output)."""
    p = subprocess.run([CLI_BIN, "keys", "status", "--data-dir", ATRESTD.data_dir,
                        "--kms-token-file", KMS_S.app_file, "--kms-ca", KMS_S.cert,
                        "--cmk-token-file", KMS_C.app_file, "--cmk-ca", KMS_C.cert],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def failure(fn):
    """The HTTPFailure fn raises, or None when it succeeds."""
    try:
        fn()
        return None
    except cerrors.HTTPFailure as e:
        return e


def wait_until(pred, limit, what):
    t0 = time.time()
    while True:
        v = pred()
        if v:
            return time.time() - t0, v
        if time.time() - t0 > limit:
            raise AssertionError("%s did not happen within %d s" % (what, limit))
        time.sleep(0.25)


class T(unittest.TestCase):
    maxDiff = None

    def client(self):
        return ATRESTD.client()

    def assert_all_back(self, what):
        """Wait until reads work again, then every document is byte-identical."""
        c = self.client()
        took, _ = wait_until(lambda: failure(lambda: c.ReadItem(COLL_LINK + "/docs/d0",
                                                                 {"partitionKey": "p0"})) is None,
                             LIMIT_S, what + ": reads resume")
        TIMINGS[what + ".resume"] = round(took, 2)
        self.assertEqual(read_all(c), DOCS)
        doc = {"id": "after-" + what, "pk": "p1", "n": len(DOCS)}
        DOCS[doc["id"]] = c.CreateItem(COLL_LINK, doc)
        self.assertEqual(c.ReadItem(COLL_LINK + "/docs/" + doc["id"], {"partitionKey": "p1"}),
                         DOCS[doc["id"]])

    def assert_refused(self, what, status, substatus, words):
        c = self.client()
        read = lambda: c.ReadItem(COLL_LINK + "/docs/d0", {"partitionKey": "p0"})  # noqa: E731
        took, e = wait_until(lambda: failure(read), LIMIT_S, what + ": refusal")
        TIMINGS[what + ".refused"] = round(took, 2)
        self.assertEqual(e.status_code, status, str(e))
        if substatus:
            self.assertEqual(e.sub_status, substatus, str(e))
        body = json.loads(e._http_error_message)
        for w in words:
            self.assertIn(w, body["message"])
        # Writes, queries, feeds and container changes are refused the same way.
        for fn in (lambda: c.CreateItem(COLL_LINK, {"id": "x-" + what, "pk": "p0"}),
                   lambda: list(c.QueryItems(COLL_LINK, "SELECT * FROM c",
                                             {"enableCrossPartitionQuery": True})),
                   lambda: list(c.ReadItems(COLL_LINK)),
                   lambda: c.CreateContainer("dbs/" + DB, {"id": "c2", "partitionKey": {
                       "paths": ["/pk"], "kind": "Hash"}}),
                   lambda: c.DeleteContainer("dbs/%s/colls/nonexistent" % DB),
                   lambda: c.ReadMedia(MEDIA["link"])):
            e2 = failure(fn)
            self.assertIsNotNone(e2, what)
            self.assertEqual(e2.status_code, status, str(e2))
        return e

    def test_01_write(self):
        c = self.client()
        c.CreateDatabase({"id": DB})
        c.CreateContainer("dbs/" + DB, {"id": COLL, "partitionKey": {"paths": ["/pk"],
                                                                     "kind": "Hash"}})
        for i in range(40):
            doc = {"id": "d%d" % i, "pk": "p%d" % (i % 3), "n": i, "s": "é✓" * i,
                   "nested": {"a": [i, None, True, {"b": "x" * (i * 10)}]}}
            DOCS[doc["id"]] = c.CreateItem(COLL_LINK, doc)
        self.assertEqual(read_all(c), DOCS)
        # Media: its DEK is wrapped by both keys (docs/attachments.md).
        MEDIA["text"] = "media é✓é✓ " * 10000
        a = c.CreateAttachmentAndUploadMedia(
            COLL_LINK + "/docs/d1", io.BytesIO(MEDIA["text"].encode()),
            {"slug": "m", "contentType": "text/plain", "partitionKey": "p1"})
        MEDIA["link"] = a["media"]
        self.assertEqual(c.ReadMedia(MEDIA["link"]), MEDIA["text"])
        acct = ATRESTD.account()
        self.assertEqual(acct["customerManagedKeyStatus"],
                         "Access to the configured customer managed key confirmed.")
        self.assertEqual(acct["keyVaultKeyUri"], KMS_C.url + "/keys/cmk")
        layers = acct["atrestKeyLayers"]
        self.assertEqual([l["state"] for l in layers], ["available", "available"])
        self.assertEqual(layers[0]["keyId"], KMS_S.url + "/keys/svc")
        # Nothing but ciphertext on disk: a document's text is nowhere.
        for top, _, files in os.walk(ATRESTD.data_dir):  # media/ included
            for name in files:
                with open(os.path.join(top, name), "rb") as f:
                    self.assertNotIn("é✓é✓".encode(), f.read(), name)

    def test_02_disable_customer_key(self):
        kc = KMS_C.keys()
        version = kc.get_key("cmk").properties.version
        kc.update_key_properties("cmk", version, enabled=False)
        e = self.assert_refused("disable", 403, 4002, ["customer-managed key", "disabled"])
        self.assertIn(KMS_C.url + "/keys/cmk", json.loads(e._http_error_message)["message"])
        acct = ATRESTD.account()
        self.assertIn("disabled", acct["customerManagedKeyStatus"])
        self.assertIn("(4002)", acct["customerManagedKeyStatus"])
        self.assertEqual(acct["atrestKeyLayers"][1]["state"], "revoked")
        self.assertFalse(acct["atrestKeyLayers"][1]["dataKeysInMemory"])
        self.assertTrue(acct["atrestKeyLayers"][0]["dataKeysInMemory"])
        code, out = keys_status()
        self.assertEqual(code, 1, out)
        self.assertIn("CANNOT UNWRAP: disabled (KeyDisabled)", out)
        self.assertIn("customer-managed key: UNUSABLE", out)
        self.assertIn(KMS_S.url + "/keys/svc", out)
        kc.update_key_properties("cmk", version, enabled=True)
        self.assert_all_back("disable")
        self.assertIn("confirmed", ATRESTD.account()["customerManagedKeyStatus"])
        code, out = keys_status()
        self.assertEqual(code, 0, out)
        self.assertIn("key layers:    2", out)
        self.assertIn("customer-managed key: confirmed", out)
        self.assertIn(version, out)

    def test_03_revoke_access(self):
        kms_cli("revoke", "--data-dir", KMS_C.dir, "--key", "cmk", "--identity", "atrestd")
        self.assert_refused("revoke", 403, 4002, ["customer-managed key", "access revoked"])
        kms_cli("grant", "--data-dir", KMS_C.dir, "--key", "cmk", "--identity", "atrestd",
                "--permissions", "wrapKey,unwrapKey")
        self.assert_all_back("revoke")

    def test_04_delete_customer_key(self):
        kc = KMS_C.keys()
        kc.begin_delete_key("cmk").wait()
        self.assert_refused("delete", 403, 4003, ["customer-managed key", "deleted"])
        kc.begin_recover_deleted_key("cmk").wait()
        self.assert_all_back("delete")

    def test_05_customer_key_service_stopped(self):
        c = self.client()
        KMS_C.stop()
        t0 = time.time()
        try:
            # Inside the grace period reads and writes go on from keys in memory.
            while time.time() - t0 < GRACE_S - 2:
                c.ReadItem(COLL_LINK + "/docs/d1", {"partitionKey": "p1"})
                time.sleep(0.5)
            doc = {"id": "during-cmk-outage", "pk": "p2"}
            DOCS[doc["id"]] = c.CreateItem(COLL_LINK, doc)
            self.assertIn("unreachable", ATRESTD.account()["customerManagedKeyStatus"])
            e = self.assert_refused("cmk-unreachable", 403, 4004,
                                    ["customer-managed key", "unreachable"])
            TIMINGS["cmk-unreachable.refused_after_stop"] = round(time.time() - t0, 2)
            self.assertIsNotNone(e)
        finally:
            KMS_C.start()
        self.assert_all_back("cmk-unreachable")

    def test_06_service_key_service_stopped(self):
        c = self.client()
        KMS_S.stop()
        t0 = time.time()
        try:
            while time.time() - t0 < GRACE_S - 2:
                c.ReadItem(COLL_LINK + "/docs/d2", {"partitionKey": "p2"})
                time.sleep(0.5)
            doc = {"id": "during-kms-outage", "pk": "p0"}
            DOCS[doc["id"]] = c.CreateItem(COLL_LINK, doc)
            self.assertEqual(ATRESTD.account()["atrestKeyLayers"][0]["state"],
                             "unreachable-grace")
            self.assert_refused("kms-unreachable", 503, 0, ["service key", "not answered"])
            TIMINGS["kms-unreachable.refused_after_stop"] = round(time.time() - t0, 2)
        finally:
            KMS_S.start()
        self.assert_all_back("kms-unreachable")

    def test_07_writes_in_flight(self):
        """A writer runs while the key is disabled: every write it saw
        acknowledged is there afterwards; the others failed with 403/503."""
        acked, refused, other = {}, [], []
        stop = threading.Event()

        def writer(tag):
            c = self.client()
            i = 0
            while not stop.is_set():
                doc = {"id": "w%s-%d" % (tag, i), "pk": "p%d" % (i % 3), "i": i}
                i += 1
                try:
                    acked[doc["id"]] = c.CreateItem(COLL_LINK, doc)
                except cerrors.HTTPFailure as e:
                    (refused if e.status_code in (403, 503) else other).append(e.status_code)
                    time.sleep(0.05)
        threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
        for t in threads:
            t.start()
        kc = KMS_C.keys()
        version = kc.get_key("cmk").properties.version
        try:
            time.sleep(1)
            kc.update_key_properties("cmk", version, enabled=False)
            wait_until(lambda: len(refused) > 5, LIMIT_S, "writes refused")
            kc.update_key_properties("cmk", version, enabled=True)
            n = len(acked)
            wait_until(lambda: len(acked) > n + 5, LIMIT_S, "writes resume")
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(other, [])
        DOCS.update(acked)
        self.assertEqual(read_all(self.client()), DOCS)
        TIMINGS["in-flight.acked"] = len(acked)
        TIMINGS["in-flight.refused"] = len(refused)

    def test_08_rotate_then_disable_old_versions(self):
        for kms, name, layer in ((KMS_C, "cmk", 1), (KMS_S, "svc", 0)):
            kc = kms.keys()
            old = kc.get_key(name).properties.version
            new = kc.rotate_key(name).properties.version
            self.assertNotEqual(old, new)
            want = new[:8]
            t, _ = wait_until(lambda: ATRESTD.account()["atrestKeyLayers"][layer].get(
                "currentKeyVersion") == want, LIMIT_S, "rewrap of " + name)
            TIMINGS["rotate." + name] = round(t, 2)
            time.sleep(CHECK_S * 2 + 1)  # one more round: the rewrap is persisted
            self.assertIn("rewrapped", ATRESTD.log())
            kc.update_key_properties(name, old, enabled=False)
        time.sleep(CHECK_S * 3 + 2)
        acct = ATRESTD.account()
        self.assertEqual([l["state"] for l in acct["atrestKeyLayers"]], ["available", "available"])
        self.assertEqual(read_all(self.client()), DOCS)

    def test_09_restart(self):
        ATRESTD.stop()
        ATRESTD.start()
        self.assertEqual(read_all(self.client()), DOCS)
        self.assertEqual(self.client().ReadMedia(MEDIA["link"]), MEDIA["text"])
        ATRESTD.stop()
        # Without --kms on an account whose service key is in a key service.
        code, out = ATRESTD.run_expect_fail([])
        self.assertNotEqual(code, 0)
        self.assertIn("--kms", out)
        self.assertIn("key service", out)
        # Another customer key on an existing account.
        KMS_C.keys().create_key("other", "oct-HSM")
        args = [a if a != KMS_C.url + "/keys/cmk" else KMS_C.url + "/keys/other"
                for a in ATRESTD.args]
        code, out = ATRESTD.run_expect_fail(args)
        self.assertNotEqual(code, 0)
        self.assertIn("customer-managed key", out)
        # --cmk omitted: the keyring names it.
        args = ATRESTD.args[:]
        i = args.index("--cmk")
        del args[i:i + 2]
        ATRESTD.start(args)
        self.assertEqual(read_all(self.client()), DOCS)
        ATRESTD.stop()
        # Customer key disabled at start-up: atrestd refuses to open the account.
        kc = KMS_C.keys()
        for v in kc.list_properties_of_key_versions("cmk"):
            kc.update_key_properties("cmk", v.version, enabled=False)
        code, out = ATRESTD.run_expect_fail(ATRESTD.args)
        self.assertNotEqual(code, 0)
        self.assertIn("customer-managed key", out)
        for v in kc.list_properties_of_key_versions("cmk"):
            kc.update_key_properties("cmk", v.version, enabled=True)
        ATRESTD.start()
        self.assertEqual(read_all(self.client()), DOCS)

    def test_10_new_account_creates_its_service_key(self):
        a = Atrestd(os.path.join(TMP, "data2"), os.path.join(TMP, "keys2"),
                    ["--kms", KMS_S.url, "--kms-token-file", KMS_S.admin_file,
                     "--kms-ca", KMS_S.cert]).start()
        try:
            m = None
            for _ in range(200):  # the key lines follow the banner
                m = re.search(r"service key:\s+(\S+)", a.log())
                if m:
                    break
                time.sleep(0.05)
            self.assertTrue(m, a.log())
            name = m.group(1).rsplit("/", 1)[1]
            self.assertTrue(name.startswith("atrest-"), name)
            self.assertEqual(KMS_S.keys().get_key(name).name, name)
            c = a.client()
            c.CreateDatabase({"id": "x"})
            self.assertNotIn("customerManagedKeyStatus", a.account())
        finally:
            a.stop()
        # --cmk on the existing (one-layer) account is refused.
        code, out = a.run_expect_fail(a.args + ["--cmk", KMS_C.url + "/keys/cmk",
                                                "--cmk-token-file", KMS_C.app_file,
                                                "--cmk-ca", KMS_C.cert])
        self.assertNotEqual(code, 0)
        self.assertIn("only when the data folder is empty", out)

    def test_11_data_keys_backup_and_restore_with_key_services(self):
        """A data-key rotation on a two-layer account (both keys in key
        services) keeps everything readable; a backup taken before it
        verifies and restores with the key services' flags instead of a key
        folder, into a new account that serves the same documents."""
        bk = os.path.join(TMP, "bk")
        ATRESTD.stop()
        ATRESTD.start(ATRESTD.args + ["--backup-target", "file:" + bk, "--reencrypt-mbps", "0"])
        p = subprocess.run([CLI_BIN, "backup", "now", "--endpoint", ATRESTD.endpoint,
                            "--master-key", harness.EMULATOR_KEY, "--insecure"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([CLI_BIN, "keys", "rotate-data-keys", "--data-dir", ATRESTD.data_dir,
                            "--wait"], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        code, out = keys_status()
        self.assertEqual(code, 0, out)
        versions = re.findall(r"DEK versions outer (\d+)\.\.(\d+) inner (\d+)\.\.(\d+)", out)
        self.assertTrue(versions, out)
        self.assertTrue(all(v == ("2", "2", "2", "2") for v in versions), out)
        self.assertEqual(read_all(self.client()), DOCS)
        self.assertEqual(self.client().ReadMedia(MEDIA["link"]), MEDIA["text"])
        svc = ["--kms-token-file", KMS_S.app_file, "--kms-ca", KMS_S.cert,
               "--cmk-token-file", KMS_C.app_file, "--cmk-ca", KMS_C.cert]
        p = subprocess.run([CLI_BIN, "backup", "verify", "--target", "file:" + bk, *svc],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        to, to_keys = os.path.join(TMP, "r-data"), os.path.join(TMP, "r-keys")
        p = subprocess.run([CLI_BIN, "backup", "restore", "--target", "file:" + bk, *svc,
                            "--to", to, "--to-key-dir", to_keys],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # the new account has its own service key (a key folder) and keeps
        # the customer's key
        r = Atrestd(to, to_keys, ["--cmk-token-file", KMS_C.app_file,
                                  "--cmk-ca", KMS_C.cert]).start()
        try:
            self.assertEqual(set(read_all(r.client())), set(DOCS))
        finally:
            r.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
