"""A fault-injecting HTTPS server on loopback: what a healthy API server never
does on command. It records every request it received (so a test can prove the
bearer token was never sent over a TLS connection that should have failed)."""
import json
import socket
import ssl
import threading
import time

PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"


class FaultServer:
    def __init__(self, cert, key, mode):
        self.mode = mode
        self.requests = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.open = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        n = int(headers.get("content-length", 0))
        while len(body) < n:
            body += conn.recv(65536)
        return method, path, headers

    @staticmethod
    def _response(status, body, ctype="application/json", extra=""):
        if isinstance(body, str):
            body = body.encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        return head.encode() + body

    def _answer(self, method, path):
        m = self.mode
        status_doc = lambda code, reason: json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                      "message": f"injected {code}", "reason": reason, "code": code})
        if path.endswith("/secrets") and method == "POST":  # as the API server answers: the object, with its uid
            return self._response(201, json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {
                "name": "pam-kubeconfig-x", "uid": "6b1f0e3c-0000-4000-8000-000000000001"}}))
        if m == "redirect":
            return self._response(307, "", extra="Location: https://other.example/api\r\n")
        if m in ("401", "403", "404", "409", "500"):
            return self._response(int(m), status_doc(int(m), "Injected"))
        if m == "html":
            return self._response(200, "<html><body>Welcome to nginx!</body></html>", "text/html")
        if m == "truncated":
            return self._response(201, '{"status": {"token": "abc.def')
        if m == "huge":
            return self._response(201, '{"pad": "' + "x" * (10 << 20) + '"}')
        if m == "no-token":
            return self._response(201, json.dumps({"status": {"expirationTimestamp": FUTURE}}))
        if m == "past-expiry":
            return self._response(201, json.dumps({"status": {"token": "eyJ.eyJ.sig", "expirationTimestamp": PAST}}))
        return self._response(201, json.dumps({"status": {"token": "eyJ.eyJ.sig", "expirationTimestamp": FUTURE}}))

    def _serve(self, raw):
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: no request came
        try:
            while True:
                req = self._read_request(conn)
                if not req:
                    return
                method, path, headers = req
                self.requests.append((method, path, "authorization" in headers))
                if self.mode == "silent":
                    time.sleep(60)
                    return
                if self.mode == "trickle":
                    for b in b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}":
                        conn.sendall(bytes([b]))
                        time.sleep(1)
                    return
                conn.sendall(self._answer(method, path))
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.open:
            try:
                c.close()
            except OSError:
                pass
