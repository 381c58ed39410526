"""Watches held open by a user's process: N TLS connections to the API server,
each with a watch on ConfigMaps of one namespace, authenticated by a token the
process read once from a file (it keeps using that token, as a client that
cached it would). Run as the user. One line of output per fact:

  ready N           N watches answered 200 and stream
  refused CODE      an attempt was answered CODE (401: the token is refused)
  failed WHAT       an attempt could not connect (refused, reset)
  event NAME        a watch delivered an ADDED event for ConfigMap NAME
  ended N           N watches have ended (cut, or closed by the server)

With --reconnect MS, each watch that ends (or cannot start) is tried again
every MS milliseconds, for ever: a client in a tight loop."""
import argparse
import json
import selectors
import socket
import ssl
import sys
import time
from urllib.parse import urlparse


def say(*words):
    print(*words, flush=True)


class Watch:
    def __init__(self, args, ctx, token):
        self.args, self.ctx, self.token = args, ctx, token
        self.sock, self.buf, self.streaming = None, b"", False

    def start(self):
        u = urlparse(self.args.server)
        raw = socket.socket(socket.AF_INET6 if ":" in u.hostname else socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(10)
        if self.args.source:
            raw.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect
            raw.bind((self.args.source, 0))
        try:
            raw.connect((u.hostname, u.port or 443))
            s = self.ctx.wrap_socket(raw, server_hostname=u.hostname)
            s.sendall((f"GET /api/v1/namespaces/{self.args.namespace}/configmaps?watch=1 HTTP/1.1\r\n"
                       f"Host: {u.netloc}\r\nAuthorization: Bearer {self.token}\r\n"
                       f"Accept: application/json\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionError("closed before the answer")
                head += chunk
        except (OSError, ConnectionError) as e:
            raw.close()
            say("failed", type(e).__name__)
            return False
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            s.close()
            say("refused", status)
            return False
        s.setblocking(False)
        self.sock, self.buf, self.streaming = s, head.split(b"\r\n\r\n", 1)[1], True
        return True

    def read(self):
        """Reads what is there; returns the names of ADDED ConfigMaps, or None at the end."""
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return []
        except OSError:
            data = b""
        if not data:
            self.sock.close()
            self.sock, self.streaming = None, False
            return None
        self.buf += data
        names = []
        # Chunked transfer: the JSON events are on lines of their own between chunk sizes.
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            line = line.strip()
            if line.startswith(b"{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("type") == "ADDED":
                    names.append(ev["object"]["metadata"]["name"])
        return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--reconnect", type=int, default=0, help="milliseconds between tries; 0: never")
    ap.add_argument("--source", help="the local address to connect from")
    args = ap.parse_args()
    with open(args.token_file) as f:
        token = f.read().strip()
    ctx = ssl.create_default_context(cafile=args.ca)
    watches = [Watch(args, ctx, token) for _ in range(args.count)]
    sel = selectors.DefaultSelector()
    seen, ended = set(), 0
    for w in watches:
        if w.start():
            sel.register(w.sock, selectors.EVENT_READ, w)
    say("ready", sum(w.streaming for w in watches))
    next_try = time.monotonic()
    while True:
        for key, _ in sel.select(timeout=0.01):
            w = key.data
            names = w.read()
            if names is None:
                sel.unregister(key.fileobj)
                ended += 1
                say("ended", ended)
                continue
            for n in names:
                if n not in seen:
                    seen.add(n)
                    say("event", n)
        if args.reconnect and time.monotonic() >= next_try:
            next_try = time.monotonic() + args.reconnect / 1000
            for w in watches:
                if not w.streaming and w.start():
                    sel.register(w.sock, selectors.EVENT_READ, w)
                    say("ready", sum(x.streaming for x in watches))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
