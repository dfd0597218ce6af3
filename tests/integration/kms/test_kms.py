#!/usr/bin/python3
"""atrest-kms driven by Debian's azure-keyvault-keys (python3-azure, 4.8).

Starts the real daemon (ATREST_KMS_BIN, default build/atrest-kms) on a free
loopback port with a temporary folder, trusts the certificate it prints
(verification on), and uses KeyClient and CryptographyClient with a plain
token credential. Expectations come from Key Vault's documented behaviour:
statuses, error shapes, the challenge, soft delete and purge protection.
The tests run in name order and share one service (its state carries over).
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from azure.core.credentials import AccessToken
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError,
                                   ResourceExistsError, ResourceNotFoundError)
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("ATREST_KMS_BIN") or os.path.join(HERE, "..", "..", "..", "build", "atrest-kms")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehavior")


class Cred:
    """The simplest TokenCredential: a fixed bearer token."""

    def __init__(self, token):
        self.token = token
        self.calls = 0

    def get_token(self, *scopes, **kwargs):
        self.calls += 1
        self.scopes = scopes
        return AccessToken(self.token, int(time.time()) + 3600)


def cli(*args, check=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"atrest-kms {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}")
    return p


class Service:
    def __init__(self, folder, *flags, env=None):
        self.folder = folder
        self.log = open(os.path.join(os.path.dirname(folder), "kms.stderr"), "a+")
        self.proc = subprocess.Popen([BIN, "--data-dir", folder, "--listen", "127.0.0.1:0", *flags],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env)
        banner = ""
        deadline = time.time() + 30
        while "folder:" not in banner:
            line = self.proc.stdout.readline()
            if not line or time.time() > deadline:
                self.proc.kill()
                raise AssertionError(f"atrest-kms did not start:\n{banner}{self.stderr()}")
            banner += line
        self.banner = banner
        self.url = re.search(r"endpoint:\s+(\S+)", banner).group(1)
        self.cert = re.search(r"certificate:\s+(\S+)", banner).group(1)

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is not None and self.log.closed:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("atrest-kms did not stop on SIGTERM")
        err = self.stderr()
        self.log.close()
        assert rc == 0, f"atrest-kms exited {rc}:\n{err}"
        assert not SANITIZER.search(err), err
        return err

    def keys(self, token):
        return KeyClient(self.url, Cred(token), verify_challenge_resource=False,
                         connection_verify=self.cert)

    def crypto(self, key_id, token):
        return CryptographyClient(key_id, Cred(token), verify_challenge_resource=False,
                                  connection_verify=self.cert)

    def raw(self, method, path, token=None, body=None):
        ctx = ssl.create_default_context(cafile=self.cert)
        host = self.url.split("//")[1]
        c = http.client.HTTPSConnection(host, context=ctx, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), json.loads(data) if data else None


def status_of(fn):
    try:
        fn()
    except HttpResponseError as e:
        return e.status_code
    return 200


class KmsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atrest-kms-it.")
        cls.folder = os.path.join(cls.tmp, "kms")
        cls.svc = Service(cls.folder)
        cls.admin = cli("token", "--data-dir", cls.folder, "--identity", "admin", "--admin").stdout.strip()
        cls.app = cli("token", "--data-dir", cls.folder, "--identity", "app").stdout.strip()
        cls.other = cli("token", "--data-dir", cls.folder, "--identity", "other").stdout.strip()
        cls.kc = cls.svc.keys(cls.admin)

    @classmethod
    def tearDownClass(cls):
        if cls.svc.proc.poll() is None:
            cls.svc.stop()
        if os.environ.get("ATREST_KEEP_TMP"):
            print("kept", cls.tmp, file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- keys ---------------------------------------------------------------

    def test_01_create_get_list_rotate(self):
        kek = self.kc.create_key("kek", "oct-HSM")
        self.assertEqual(kek.key_type, "oct-HSM")
        self.assertRegex(kek.id, r"^%s/keys/kek/[0-9a-f]{32}$" % re.escape(self.svc.url))
        self.assertIsNone(kek.key.k, "a symmetric key's material never leaves the service")
        self.assertTrue(kek.properties.enabled)
        self.assertIn("wrapKey", kek.key.key_ops)

        rsa = self.kc.create_rsa_key("rsa", size=3072, hardware_protected=True)
        self.assertEqual(rsa.key_type, "RSA-HSM")
        self.assertEqual(len(rsa.key.n), 384)
        self.assertEqual(rsa.key.e, b"\x01\x00\x01")
        self.assertIsNone(rsa.key.d, "no private part")

        got = self.kc.get_key("rsa")
        self.assertEqual(got.id, rsa.id)
        self.assertEqual(got.key.n, rsa.key.n)
        self.assertEqual(self.kc.get_key("kek", kek.properties.version).id, kek.id)

        rotated = self.kc.rotate_key("kek")
        self.assertNotEqual(rotated.properties.version, kek.properties.version)
        self.assertEqual(rotated.key_type, "oct-HSM")
        self.assertEqual(self.kc.get_key("kek").id, rotated.id, "rotation makes the new version current")
        versions = sorted(p.version for p in self.kc.list_properties_of_key_versions("kek"))
        self.assertEqual(versions, sorted([kek.properties.version, rotated.properties.version]))
        names = sorted(p.name for p in self.kc.list_properties_of_keys())
        self.assertEqual(names, ["kek", "rsa"])

        with self.assertRaises(ResourceNotFoundError):
            self.kc.get_key("missing")
        with self.assertRaises(ResourceNotFoundError):
            self.kc.get_key("kek", "0" * 32)
        with self.assertRaises(HttpResponseError) as cm:
            self.kc.create_ec_key("ec")
        self.assertEqual(cm.exception.status_code, 400)
        type(self).kek_v1 = kek
        type(self).kek = rotated
        type(self).rsa = rsa

    # ---- wrap / unwrap ------------------------------------------------------

    def test_02_wrap_unwrap_a256kw(self):
        cli("grant", "--data-dir", self.folder, "--key", "kek", "--identity", "app",
            "--permissions", "wrapKey,unwrapKey")
        # app cannot get the key, so CryptographyClient wraps remotely.
        cc = self.svc.crypto(self.kek.id, self.app)
        dek = os.urandom(32)
        w = cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)
        self.assertEqual(len(w.encrypted_key), 40, "RFC 3394: 8 bytes longer")
        self.assertEqual(w.key_id, self.kek.id)
        self.assertEqual(cc.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key).key, dek)
        # The same ciphertext unwraps through a fresh client, and not under
        # the other version of the key.
        self.assertEqual(self.svc.crypto(self.kek.id, self.app)
                         .unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key).key, dek)
        old = self.svc.crypto(self.kek_v1.id, self.app)
        self.assertEqual(status_of(lambda: old.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key)), 400)
        # A wrong algorithm for the key type.
        self.assertEqual(status_of(lambda: cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)), 400)
        type(self).wrapped = (dek, w.encrypted_key)

    def test_03_wrap_unwrap_rsa_oaep_256(self):
        cli("grant", "--data-dir", self.folder, "--key", "rsa", "--identity", "app",
            "--permissions", "get,wrapKey,unwrapKey")
        dek = os.urandom(32)
        # With get, the SDK wraps locally with the public key (n, e) and the
        # service unwraps: proves the public key and OAEP-256 parameters.
        cc = self.svc.crypto(self.rsa.id, self.app)
        w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
        self.assertEqual(len(w.encrypted_key), 384)
        self.assertEqual(cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key, dek)
        # Without get: both operations on the service.
        cli("grant", "--data-dir", self.folder, "--key", "rsa", "--identity", "other",
            "--permissions", "wrapKey,unwrapKey")
        remote = self.svc.crypto(self.rsa.id, self.other)
        w2 = remote.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
        self.assertNotEqual(w2.encrypted_key, w.encrypted_key, "OAEP is randomised")
        self.assertEqual(remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w2.encrypted_key).key, dek)
        self.assertEqual(remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key, dek)
        # A tampered ciphertext is refused, never answered with garbage.
        bad = bytearray(w2.encrypted_key)
        bad[10] ^= 1
        self.assertEqual(status_of(lambda: remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, bytes(bad))), 400)

    # ---- access -------------------------------------------------------------

    def test_04_access_denied(self):
        cc = self.svc.crypto(self.kek.id, self.other)
        self.assertEqual(status_of(lambda: cc.wrap_key(KeyWrapAlgorithm.aes_256, os.urandom(32))), 403)
        kc = self.svc.keys(self.other)
        self.assertEqual(status_of(lambda: kc.get_key("kek")), 403)
        # A refusal does not tell whether a key exists.
        self.assertEqual(status_of(lambda: kc.get_key("no-such-key")), 403)
        # Non-admins manage nothing, even with every permission on a key.
        app = self.svc.keys(self.app)
        self.assertEqual(status_of(lambda: app.create_key("mine", "oct-HSM")), 403)
        self.assertEqual(status_of(lambda: app.update_key_properties("rsa", enabled=False)), 403)
        self.assertEqual(status_of(lambda: app.rotate_key("rsa")), 403)
        self.assertEqual(status_of(lambda: app.begin_delete_key("rsa")), 403)
        # Listing shows only what the caller may get.
        self.assertEqual([p.name for p in app.list_properties_of_keys()], ["rsa"])
        self.assertEqual(list(kc.list_properties_of_keys()), [])
        status, _, body = self.svc.raw("GET", "/keys/kek?api-version=7.4", self.other)
        self.assertEqual(status, 403)
        self.assertEqual(body["error"]["code"], "Forbidden")
        self.assertTrue(body["error"]["message"])

    def test_05_grant_and_revoke_while_running(self):
        cc = self.svc.crypto(self.kek.id, self.other)
        dek = os.urandom(32)
        self.assertEqual(status_of(lambda: cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)), 403)
        cli("grant", "--data-dir", self.folder, "--key", "kek", "--identity", "other",
            "--permissions", "wrapKey,unwrapKey")
        w = cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)
        self.assertEqual(cc.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key).key, dek)
        cli("revoke", "--data-dir", self.folder, "--key", "kek", "--identity", "other",
            "--permissions", "unwrapKey")
        self.assertEqual(status_of(lambda: cc.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key)), 403)
        cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)  # wrapKey is still granted
        cli("revoke", "--data-dir", self.folder, "--key", "kek", "--identity", "other")
        self.assertEqual(status_of(lambda: cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)), 403)
        # The app's own grant was untouched.
        self.svc.crypto(self.kek.id, self.app).wrap_key(KeyWrapAlgorithm.aes_256, dek)
        p = cli("grant", "--data-dir", self.folder, "--key", "kek", "--identity", "other",
                "--permissions", "sign", check=False)
        self.assertEqual(p.returncode, 2)

    def test_06_disable_and_expiry(self):
        cc = self.svc.crypto(self.kek.id, self.app)
        dek, wrapped = self.wrapped
        props = self.kc.update_key_properties("kek", self.kek.properties.version, enabled=False)
        self.assertFalse(props.properties.enabled)
        self.assertFalse(self.kc.get_key("kek").properties.enabled)
        self.assertEqual(status_of(lambda: cc.wrap_key(KeyWrapAlgorithm.aes_256, dek)), 403)
        self.assertEqual(status_of(lambda: cc.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped)), 403)
        status, _, body = self.svc.raw(
            "POST", f"/keys/kek/{self.kek.properties.version}/wrapkey?api-version=7.4", self.app,
            {"alg": "A256KW", "value": base64.urlsafe_b64encode(dek).decode().rstrip("=")})
        self.assertEqual(status, 403)
        self.assertEqual(body["error"]["innererror"]["code"], "KeyDisabled")
        self.kc.update_key_properties("kek", self.kek.properties.version, enabled=True)
        self.assertEqual(cc.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped).key, dek)
        # Expired: no new wraps, old data still unwraps.
        from datetime import datetime, timedelta, timezone
        past = datetime.now(timezone.utc) - timedelta(minutes=5)
        got = self.kc.update_key_properties("kek", self.kek.properties.version, expires_on=past)
        self.assertIsNotNone(got.properties.expires_on)
        raw = lambda: self.svc.raw("POST", f"/keys/kek/{self.kek.properties.version}/wrapkey?api-version=7.4",
                                   self.app, {"alg": "A256KW", "value": base64.urlsafe_b64encode(dek).decode()})
        self.assertEqual(raw()[0], 403)
        self.assertEqual(cc.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped).key, dek)
        status, _, _ = self.svc.raw("PATCH", f"/keys/kek/{self.kek.properties.version}?api-version=7.4",
                                    self.admin, {"attributes": {"exp": int(time.time()) + 86400}})
        self.assertEqual(status, 200)
        self.assertEqual(raw()[0], 200)

    # ---- soft delete, recover, purge ----------------------------------------------

    def test_07_soft_delete_recover_purge(self):
        kc = self.kc
        kc.create_key("tmp", "oct")
        deleted = kc.begin_delete_key("tmp", _polling_interval=0.1).result()
        self.assertTrue(deleted.recovery_id.endswith("/deletedkeys/tmp"))
        self.assertIsNotNone(deleted.scheduled_purge_date)
        self.assertGreater(deleted.scheduled_purge_date, deleted.deleted_date)
        with self.assertRaises(ResourceNotFoundError):
            kc.get_key("tmp")
        self.assertEqual(kc.get_deleted_key("tmp").id, deleted.id)
        self.assertIn("tmp", [d.name for d in kc.list_deleted_keys()])
        with self.assertRaises(ResourceExistsError):
            kc.create_key("tmp", "oct")  # 409: name held by a deleted key
        recovered = kc.begin_recover_deleted_key("tmp", _polling_interval=0.1).result()
        self.assertEqual(recovered.id, deleted.id)
        self.assertEqual(kc.get_key("tmp").id, deleted.id)
        with self.assertRaises(ResourceNotFoundError):
            kc.get_deleted_key("tmp")
        # Without purge protection, purge removes it for good.
        kc.begin_delete_key("tmp", _polling_interval=0.1).result()
        kc.purge_deleted_key("tmp")
        with self.assertRaises(ResourceNotFoundError):
            kc.get_deleted_key("tmp")
        with self.assertRaises(ResourceNotFoundError):
            kc.get_key("tmp")
        # Non-admins may not see deleted keys.
        self.assertEqual(status_of(lambda: list(self.svc.keys(self.app).list_deleted_keys())), 403)

    # ---- the challenge and tokens -------------------------------------------------

    def test_08_challenge_and_bad_tokens(self):
        status, headers, body = self.svc.raw("GET", "/keys/kek?api-version=7.4")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("WWW-Authenticate"),
                         f'Bearer authorization="{self.svc.url}", resource="https://vault.azure.net"')
        self.assertEqual(body["error"]["code"], "Unauthorized")
        forged = self.app[:-2] + ("AA" if not self.app.endswith("AA") else "BB")
        self.assertEqual(self.svc.raw("GET", "/keys/kek?api-version=7.4", forged)[0], 401)
        expired = cli("token", "--data-dir", self.folder, "--identity", "app", "--ttl", "1").stdout.strip()
        time.sleep(2.1)
        self.assertEqual(self.svc.raw("GET", "/keys/rsa?api-version=7.4", expired)[0], 401)
        # The SDK asks the credential for the scope from the challenge.
        cred = Cred(self.admin)
        KeyClient(self.svc.url, cred, verify_challenge_resource=False,
                  connection_verify=self.svc.cert).get_key("rsa")
        self.assertEqual(cred.scopes, ("https://vault.azure.net/.default",))
        # With resource verification on (the SDK default), the SDK refuses a
        # challenge whose resource is not the vault's own domain.
        # (The SDK caches challenges per host; forget them so it asks again.)
        from azure.keyvault.keys._shared import http_challenge_cache
        http_challenge_cache.clear()
        strict = KeyClient(self.svc.url, Cred(self.admin), connection_verify=self.svc.cert)
        with self.assertRaises(ValueError):
            strict.get_key("rsa")
        self.assertEqual(self.svc.raw("GET", "/keys/kek", self.admin)[0], 400, "api-version required")
        self.assertEqual(self.svc.raw("GET", "/secrets/x?api-version=7.4", self.admin)[0], 404)
        # No token, no key material, no secret in the service's log.
        err = self.svc.stderr()
        for t in (self.admin, self.app, self.other):
            self.assertNotIn(t.split(".")[2], err)

    # ---- restart: persistence, purge protection, root key --------------------------

    def test_09_restart_purge_protection(self):
        cls = type(self)
        cls.svc.stop()
        cls.svc = Service(self.folder, "--purge-protection")
        kc = cls.kc = cls.svc.keys(self.admin)
        self.assertIn("purge protection: on", cls.svc.banner)
        # The keystore came back: same versions, the same key still unwraps.
        self.assertEqual(kc.get_key("kek").id.split("/")[-1], self.kek.properties.version)
        dek, wrapped = self.wrapped
        self.assertEqual(cls.svc.crypto(self.kek.id.replace(self.kek.id.split("/keys/")[0], cls.svc.url), self.app)
                         .unwrap_key(KeyWrapAlgorithm.aes_256, wrapped).key, dek)
        kc.create_key("kept", "oct-HSM")
        kc.begin_delete_key("kept", _polling_interval=0.1).result()
        self.assertEqual(kc.get_deleted_key("kept").properties.recovery_level, "Recoverable")
        self.assertEqual(status_of(lambda: kc.purge_deleted_key("kept")), 403)
        self.assertEqual(kc.get_deleted_key("kept").name, "kept", "still there, recoverable")
        # Purge protection cannot be turned off: a restart without the flag keeps it.
        cls.svc.stop()
        cls.svc = Service(self.folder)
        kc = cls.kc = cls.svc.keys(self.admin)
        self.assertIn("purge protection: on", cls.svc.banner)
        self.assertEqual(status_of(lambda: kc.purge_deleted_key("kept")), 403)
        kc.begin_recover_deleted_key("kept", _polling_interval=0.1).result()
        # A second daemon on the same folder is refused.
        p = subprocess.run([BIN, "--data-dir", self.folder, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("in use", p.stderr)

    def test_10_wrong_root_key_and_modes(self):
        copy = os.path.join(self.tmp, "copy")
        shutil.copytree(self.folder, copy)
        os.remove(os.path.join(copy, "lock"))
        env = dict(os.environ, ATREST_KMS_ROOT_KEY=base64.b64encode(os.urandom(32)).decode())
        p = subprocess.run([BIN, "--data-dir", copy, "--listen", "127.0.0.1:0"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("failed authentication", p.stderr)
        os.chmod(os.path.join(copy, "keystore"), 0o644)
        p = subprocess.run([BIN, "--data-dir", copy, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("0644", p.stderr)
        os.chmod(os.path.join(copy, "keystore"), 0o600)
        os.chmod(copy, 0o750)
        p = subprocess.run([BIN, "--data-dir", copy, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("0750", p.stderr)
        for name in ("root.key", "keystore", "token.secret", "policy", "audit.log", "audit.head"):
            self.assertEqual(os.stat(os.path.join(self.folder, name)).st_mode & 0o777, 0o600, name)
        self.assertEqual(os.stat(self.folder).st_mode & 0o777, 0o700)
        # The keystore holds no key in the clear: the public modulus of the
        # RSA key (always present in a private key encoding) is not in it.
        with open(os.path.join(self.folder, "keystore"), "rb") as f:
            self.assertNotIn(self.rsa.key.n[:32], f.read())

    # ---- the C client (src/kms/client.c) through `atrest-kms client` ---------------

    def test_10b_c_client(self):
        tok = os.path.join(self.tmp, "app.token")
        with open(tok, "w") as f:
            f.write(self.app + "\n")
        base = ["--url", self.svc.url, "--token-file", tok, "--ca", self.svc.cert]
        b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
        unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        # get: allowed on rsa (app has get), refused on kek (no get).
        p = cli("client", "get", *base, "--key", "rsa")
        self.assertTrue(p.stdout.startswith(self.svc.url + "/keys/rsa/"), p.stdout)
        self.assertIn("RSA-HSM enabled", p.stdout)
        p = cli("client", "get", *base, "--key", "kek", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("status=403 code=Forbidden inner=AccessDenied", p.stdout)
        # wrap/unwrap with the current version, and a value the SDK wrapped.
        dek, wrapped = self.wrapped
        p = cli("client", "wrap", *base, "--key", "kek", "--alg", "A256KW", "--value", b64(dek))
        kid, value = p.stdout.split()
        self.assertEqual(kid, self.kek.id.replace(self.kek.id.split("/keys/")[0], self.svc.url))
        self.assertEqual(len(unb64(value)), 40)
        p = cli("client", "unwrap", *base, "--key", "kek", "--alg", "A256KW", "--value", value)
        self.assertEqual(unb64(p.stdout.strip()), dek)
        p = cli("client", "unwrap", *base, "--key", "kek", "--version", self.kek.properties.version,
                "--alg", "A256KW", "--value", b64(wrapped))
        self.assertEqual(unb64(p.stdout.strip()), dek)
        # RSA-OAEP-256 through the service.
        p = cli("client", "wrap", *base, "--key", "rsa", "--alg", "RSA-OAEP-256", "--value", b64(dek))
        value = p.stdout.split()[1]
        p = cli("client", "unwrap", *base, "--key", "rsa", "--alg", "RSA-OAEP-256", "--value", value)
        self.assertEqual(unb64(p.stdout.strip()), dek)
        # A disabled key: refused with the reason.
        self.kc.update_key_properties("kek", self.kek.properties.version, enabled=False)
        p = cli("client", "unwrap", *base, "--key", "kek", "--alg", "A256KW", "--value", b64(wrapped),
                check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("status=403 code=Forbidden inner=KeyDisabled", p.stdout)
        self.kc.update_key_properties("kek", self.kek.properties.version, enabled=True)
        # Not trusted (system roots only): no connection. Unreachable: exit 3.
        p = cli("client", "get", "--url", self.svc.url, "--token-file", tok, "--key", "rsa", check=False)
        self.assertEqual(p.returncode, 3)
        p = cli("client", "get", "--url", self.svc.url, "--token-file", tok, "--insecure",
                "--key", "rsa")
        self.assertIn("/keys/rsa/", p.stdout)
        p = cli("client", "get", "--url", "https://127.0.0.1:1", "--token-file", tok,
                "--ca", self.svc.cert, "--key", "rsa", check=False)
        self.assertEqual(p.returncode, 3)
        # A wrong token: 401.
        with open(tok, "w") as f:
            f.write(self.app[:-4] + "AAAA")
        p = cli("client", "get", *base, "--key", "rsa", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("status=401", p.stdout)

    # ---- the audit log --------------------------------------------------------------

    def test_11_audit_log(self):
        cls = type(self)
        cls.svc.stop()
        log = os.path.join(self.folder, "audit.log")
        with open(log) as f:
            lines = f.read().splitlines(keepends=True)
        entries = [json.loads(l) for l in lines]
        ops = {(e["identity"], e["op"], e["result"]) for e in entries}
        self.assertIn(("admin", "create", "ok"), ops)
        self.assertIn(("app", "wrapKey", "ok"), ops)
        self.assertIn(("app", "unwrapKey", "ok"), ops)
        self.assertIn(("other", "wrapKey", "denied"), ops)
        self.assertIn(("-", "get", "unauthorized"), ops)
        self.assertIn(("admin", "purge", "denied"), ops)
        self.assertIn(("app", "wrapKey", "denied"), ops)  # the disabled key
        self.assertTrue(all(set(e) == {"seq", "time", "identity", "key", "version", "op",
                                       "result", "status", "prev", "hash"} for e in entries))
        self.assertEqual([e["seq"] for e in entries], list(range(1, len(entries) + 1)))
        ok = cli("audit", "verify", "--data-dir", self.folder)
        self.assertIn(f"{len(lines)} entries", ok.stdout)
        self.assertIn("sealed head matches", ok.stdout)

        def verify_with(new_lines):
            with open(log, "w") as f:
                f.writelines(new_lines)
            os.chmod(log, 0o600)
            return cli("audit", "verify", "--data-dir", self.folder, check=False)

        n = len(lines) // 2
        # One byte of one entry.
        edited = list(lines)
        edited[n] = edited[n].replace('"result":"ok"', '"result":"ko"', 1) \
            if '"result":"ok"' in edited[n] else edited[n].replace('"status":', '"status": ', 1)
        p = verify_with(edited)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(f"entry {n + 1}", p.stdout)
        self.assertIn("edited", p.stdout)
        # An entry removed.
        p = verify_with(lines[:n] + lines[n + 1:])
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"entry {n + 1}", p.stdout)
        # Two entries swapped.
        swapped = list(lines)
        swapped[n], swapped[n + 1] = swapped[n + 1], swapped[n]
        p = verify_with(swapped)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"entry {n + 1}", p.stdout)
        # The tail cut off: the chain is intact, the sealed head catches it.
        p = verify_with(lines[:-2])
        self.assertEqual(p.returncode, 1)
        self.assertIn("tail was removed", p.stdout)
        # An entry appended by hand (correctly chained) is past the head.
        last = entries[-1]
        import hashlib
        fake = dict(last, seq=last["seq"] + 1, prev=last["hash"], op="forged")
        del fake["hash"]
        prefix = json.dumps(fake, separators=(",", ":"))[:-1]
        h = hashlib.sha256(bytes.fromhex(last["hash"]) + prefix.encode()).hexdigest()
        p = verify_with(lines + [prefix + ',"hash":"%s"}\n' % h])
        self.assertEqual(p.returncode, 1)
        self.assertIn("past the sealed head", p.stdout)
        # The daemon refuses to append to a tampered log.
        verify_with(edited)
        p = subprocess.run([BIN, "--data-dir", self.folder, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("fails verification", p.stderr)
        # Restored, it verifies again.
        self.assertEqual(verify_with(lines).returncode, 0)


if __name__ == "__main__":
    unittest.main()
