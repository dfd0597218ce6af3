"""Starts the real atrestd for a Python test class and stops it again.

The same contract as ../lib/harness.mjs: a free loopback port, a fresh
temporary folder with data/, keys/ and the captured output (server-*.log),
the certificate path parsed from the server's output (a line naming a "cert"
and a .pem/.crt path) or found under the key folder, SIGTERM then SIGKILL.
ATREST_BIN names the binary (default <repo>/build/atrestd); ATREST_KEEP_TMP
keeps the folder.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

EMULATOR_KEY = ("C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGy"
                "PMbIZnqyMsEcaGQy67XIw/Jw==")
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer")


def server_binary():
    b = os.environ.get("ATREST_BIN") or os.path.join(REPO_ROOT, "build", "atrestd")
    if not os.path.exists(b):
        raise RuntimeError("atrestd not found at %s (set ATREST_BIN)" % b)
    return os.path.abspath(b)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _tcp_ready(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def cert_path_from_output(text, cwd):
    for line in text.splitlines():
        if not re.search("cert", line, re.I):
            continue
        m = re.search(r"((?:[A-Za-z]:)?[^\s\"'=:,;()<>]*\.(?:pem|crt))\b", line)
        if m:
            p = os.path.join(cwd, m.group(1))
            if os.path.exists(p):
                return p
    return None


def _cert_from_key_dir(key_dir):
    for d, _, files in os.walk(key_dir):
        for f in files:
            if f.endswith((".pem", ".crt")):
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    if b"BEGIN CERTIFICATE" in fh.read():
                        return p
    return None


class Server:
    def __init__(self, master_key=None, extra_args=(), root=None):
        # root: an existing folder with data/ and keys/ (a restored account)
        self.root = root or tempfile.mkdtemp(prefix="atrest-it-py-")
        self.data_dir = os.path.join(self.root, "data")
        self.key_dir = os.path.join(self.root, "keys")
        self.master_key = master_key or EMULATOR_KEY
        self.proc = None
        self.starts = 0
        self._given_key, self._extra_args = master_key, list(extra_args)
        self._launch()

    def restart(self):
        """Stops the server (SIGTERM; it must stop cleanly) and starts it again
        on the same folders, on a new port (self.endpoint changes)."""
        problems = self.stop_and_check()
        if problems:
            raise AssertionError("\n".join(problems))
        self._launch()

    def _launch(self):
        master_key, extra_args = self._given_key, self._extra_args
        last = None
        for attempt in range(3):
            self.port = free_port()
            self.log_path = os.path.join(self.root, "server-%d.log" % self.starts)
            self.starts += 1
            args = [server_binary(), "--data-dir", self.data_dir, "--key-dir", self.key_dir,
                    "--listen", "127.0.0.1:%d" % self.port, "--log-requests"]
            if master_key:
                args += ["--master-key", master_key]
            args += list(extra_args)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(args, cwd=self.root, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            deadline = time.time() + 5
            ready = False
            while time.time() < deadline and self.proc.poll() is None:
                if _tcp_ready(self.port):
                    ready = True
                    break
                time.sleep(0.05)
            if ready:
                break
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            last = "atrestd did not start (exit %s):\n%s" % (self.proc.returncode, self.log()[-4000:])
            if not re.search("in use|bind", self.log(), re.I):
                raise RuntimeError(last)
        else:
            raise RuntimeError(last)
        self.cert_path = None
        until = time.time() + 1
        while self.cert_path is None and time.time() < until:
            self.cert_path = cert_path_from_output(self.log(), self.root)
            if self.cert_path is None:
                time.sleep(0.05)
        if self.cert_path is None:
            self.cert_path = _cert_from_key_dir(self.key_dir)
        self.endpoint = "https://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the server; returns (returncode, forced, sanitizer_report_or_None)."""
        forced = False
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                forced = True
                self.proc.kill()
                self.proc.wait()
        out = self.log()
        m = SANITIZER_RE.search(out)
        return self.proc.returncode, forced, (out[m.start():m.start() + 2000] if m else None)

    def stop_and_check(self):
        """Stops the server; returns what was wrong: died early, a sanitizer
        report, or no clean exit on SIGTERM (an empty list when all is well)."""
        alive = self.alive()
        code, forced, sanitizer = self.stop()
        problems = []
        if not alive:
            problems.append("atrestd died during the tests")
        if sanitizer:
            problems.append("sanitizer report:\n" + sanitizer)
        if forced or code != 0:
            problems.append("atrestd did not shut down cleanly on SIGTERM (exit %s, forced %s)\n%s"
                            % (code, forced, self.log()[-2000:]))
        return problems

    def cleanup(self):
        if os.environ.get("ATREST_KEEP_TMP"):
            print("atrest-it: kept %s" % self.root)
            return
        shutil.rmtree(self.root, ignore_errors=True)
