"""A fault-injecting TLS proxy in front of the real API server, for what a healthy
API server never does on command: answer 5xx, answer late, reset, fall silent.

It terminates TLS with a certificate for 127.0.0.1 and localhost signed by the
test cluster's CA, so the helper trusts it through the same
`certificate_authority` by either name (two front URLs to one server), and
forwards each HTTP/1.1 request to the real kube-apiserver. Rules match a method
and a path (regular expressions) and are switched by the test at run time; the
first rule that matches and has uses left decides. The proxy never logs a
header or a body: its log keeps the method, the path, what it did, the status,
and two facts about the request body (whether a DELETE carried
`preconditions.uid`, whether a TokenRequest carried `boundObjectRef.uid`)."""
import atexit
import http.client
import json
import random
import re
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from pathlib import Path

import certs

_CERTS = {}
_CERTS_LOCK = threading.Lock()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect", "proxy-connection",
              "upgrade", "te", "trailer"}


def serving_cert(ca_file):
    """A certificate for IP:127.0.0.1 and DNS:localhost signed by the test
    cluster's CA (its key sits next to it: tests/cluster/up writes ca.crt and
    ca.key together)."""
    with _CERTS_LOCK:
        if ca_file not in _CERTS:
            ca_key = Path(ca_file).parent / "ca.key"
            d = Path(tempfile.mkdtemp(prefix="kc-faultproxy."))
            atexit.register(shutil.rmtree, d, True)
            _CERTS[ca_file] = certs.sign_cert(d, "faultproxy", ca_file, ca_key, san="IP:127.0.0.1,DNS:localhost")
        return _CERTS[ca_file]


class Rule:
    """action: "status" (answer `status` without forwarding), "delay" (forward
    after `delay` seconds, even if the client has hung up: a request that left
    late; `status` set: answer that after the delay instead), "reset" (TCP
    reset, no answer), "silence" (never answer), "hold" (forward once the test
    calls release(); `status` set: answer that instead).
    times: how many requests it applies to (None: all)."""

    def __init__(self, action, method=".*", path=".*", status=None, delay=0.0, times=None):
        assert action in ("status", "delay", "reset", "silence", "hold"), action
        self.action = action
        self.method = re.compile(method)
        self.path = re.compile(path)
        self.status = status if status is not None else (503 if action == "status" else None)
        self.delay = delay
        self.left = times
        self.hits = 0
        self.hit = threading.Event()  # a request matched
        self.done = threading.Event()  # a delayed or held request was answered upstream
        self.gate = threading.Event()

    def matches(self, method, path):
        return (self.left is None or self.left > 0) and self.method.fullmatch(method) and self.path.search(path)

    def release(self):
        self.gate.set()

    def __repr__(self):
        extra = f" {self.status}" if self.status else ""
        extra += f" {self.delay:.1f}s" if self.delay else ""
        extra += f" x{self.left}" if self.left is not None else ""
        return f"{self.action}{extra} {self.method.pattern} {self.path.pattern}"


class FaultProxy:
    def __init__(self, upstream, ca_file, name="proxy"):
        self.name = name
        u = upstream.removeprefix("https://")
        self.up_host, port = u.rsplit(":", 1)
        self.up_port = int(port)
        self.up_ctx = ssl.create_default_context(cafile=ca_file)
        cert, key = serving_cert(ca_file)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.rules = []
        self.mode = "up"  # "up", "down" (connections refused), "blackhole" (accepted, never answered)
        self.log = []
        self.lock = threading.Lock()
        self.conns = set()
        self.closing = threading.Event()
        # A port below the ephemeral range, so that no outgoing connection takes
        # it while the proxy is "down" and it can listen there again.
        self.listener = None
        for _ in range(200):
            self.port = random.randrange(20000, 32000)
            try:
                self._listen()
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free loopback port for the fault proxy")

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    @property
    def other_url(self):
        """Another server for the same proxy: a cluster whose server moved."""
        return f"https://localhost:{self.port}"

    # ---- what a test switches ----------------------------------------------

    def add(self, rule):
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        """Back to healthy: no rules, listening, held requests released."""
        with self.lock:
            rules, self.rules = self.rules, []
        for r in rules:
            r.gate.set()
        self.set_mode("up")

    def set_mode(self, mode):
        assert mode in ("up", "down", "blackhole"), mode
        with self.lock:
            self.mode = mode
            if mode == "down" and self.listener:
                l, self.listener = self.listener, None
                try:
                    l.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                l.close()
                # What was open goes down with it, as when the server dies.
                for c in list(self.conns):
                    self._reset(c)
            elif mode != "down" and not self.listener:
                self._listen()

    def requests(self, method=None, path=None):
        with self.lock:
            return [e for e in self.log if (not method or e["method"] == method)
                    and (not path or re.search(path, e["path"]))]

    def close(self):
        self.closing.set()
        self.set_mode("down")
        with self.lock:
            for r in self.rules:
                r.gate.set()

    # ---- the plumbing -----------------------------------------------------------

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", self.port))
        except OSError:
            s.close()
            raise
        s.listen(256)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                raw, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(raw)
                mode = self.mode
            if mode == "blackhole":
                threading.Thread(target=self._hold_silent, args=(raw,), daemon=True).start()
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    @staticmethod
    def _reset(raw):
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            raw.close()
        except OSError:
            pass

    def _hold_silent(self, sock):
        """Never answers; returns when the client hangs up or the proxy closes."""
        while not self.closing.is_set():
            try:
                r, _, _ = select.select([sock], [], [], 0.5)
                if r and not sock.recv(4096):
                    break
            except (OSError, ValueError, ssl.SSLError):
                break
        self._drop(sock)

    def _drop(self, raw):
        with self.lock:
            self.conns.discard(raw)
        try:
            raw.close()
        except OSError:
            pass

    def _match(self, method, path):
        with self.lock:
            for r in self.rules:
                if r.matches(method, path):
                    if r.left is not None:
                        r.left -= 1
                    r.hits += 1
                    r.hit.set()
                    return r
        return None

    @staticmethod
    def _read_request(rf):
        line = rf.readline(65536)
        if not line:
            return None
        method, path, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = []
        while True:
            h = rf.readline(65536).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, v = h.split(":", 1)
            headers.append((k.strip(), v.strip()))
        return method, path, headers

    @staticmethod
    def _read_body(rf, tls, headers):
        hd = {k.lower(): v for k, v in headers}
        if hd.get("expect", "").lower() == "100-continue":
            tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if hd.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(rf.readline().split(b";")[0].strip(), 16)
                if n == 0:
                    while rf.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += rf.read(n)
                rf.readline()
        n = int(hd.get("content-length") or 0)
        return rf.read(n) if n else b""

    @staticmethod
    def _facts(method, path, body):
        """What the invariants care about in a request body, never the body itself."""
        facts = {}
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = {}
        if method == "DELETE" and "/secrets/" in path:
            facts["precondition_uid"] = bool(((doc or {}).get("preconditions") or {}).get("uid"))
        if method == "POST" and path.endswith("/token"):
            ref = ((doc or {}).get("spec") or {}).get("boundObjectRef") or {}
            facts["bound"] = bool(ref)
            facts["bound_uid"] = bool(ref.get("uid"))
        return facts

    def _forward(self, up, method, path, headers, body):
        hdrs = {k: v for k, v in headers if k.lower() not in HOP_BY_HOP}
        if up[0] is None:
            up[0] = http.client.HTTPSConnection(self.up_host, self.up_port, context=self.up_ctx, timeout=60)
        try:
            up[0].request(method, path, body=body if body or method in ("POST", "PUT", "PATCH") else None,
                          headers=hdrs)
            r = up[0].getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            up[0].close()
            up[0] = None
            raise
        return r.status, r.reason, [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP], data

    @staticmethod
    def _status_answer(code):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "injected by the fault proxy", "reason": "InternalError",
                           "code": code}).encode()
        return code, "Injected", [("Content-Type", "application/json")], body

    @staticmethod
    def _send(tls, status, reason, headers, data):
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += f"Content-Length: {len(data)}\r\n\r\n"
        tls.sendall(head.encode("latin-1") + data)

    def _note(self, method, path, action, status, facts):
        with self.lock:
            self.log.append({"t": time.monotonic(), "method": method, "path": path, "action": action,
                             "status": status, **facts})

    def _serve(self, raw):
        up = [None]
        sock = raw
        try:
            raw.settimeout(30)
            # wrap_socket takes the descriptor over: from here on only the TLS socket is used.
            sock = self.ctx.wrap_socket(raw, server_side=True)
            with self.lock:
                self.conns.discard(raw)
                self.conns.add(sock)
            sock.settimeout(120)
            rf = sock.makefile("rb")
            while not self.closing.is_set():
                req = self._read_request(rf)
                if req is None:
                    break
                method, path, headers = req
                body = self._read_body(rf, sock, headers)
                facts = self._facts(method, path, body)
                rule = self._match(method, path)
                action = rule.action if rule else "forward"
                if action == "reset":
                    self._note(method, path, action, None, facts)
                    self._reset(sock)
                    return
                if action == "silence":
                    self._note(method, path, action, None, facts)
                    self._hold_silent(sock)
                    return
                if action == "hold":
                    rule.gate.wait(120)
                elif action == "delay":
                    time.sleep(rule.delay)
                if action == "status" or (action in ("hold", "delay") and rule.status):
                    answer = self._status_answer(rule.status)
                else:
                    try:
                        answer = self._forward(up, method, path, headers, body)
                    except (OSError, http.client.HTTPException):
                        answer = self._status_answer(502)
                self._note(method, path, action, answer[0], facts)
                if rule:
                    rule.done.set()
                try:
                    self._send(sock, *answer)
                except OSError:
                    break
                if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                    break
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            if up[0] is not None:
                up[0].close()
            self._drop(sock)
