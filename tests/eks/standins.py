"""The EKS tier's stand-ins for what cannot be reached here.

- kc-aws-standin (Go, tests/eks/standin, built by tests/eks/build): STS and EKS
  DescribeCluster answering only calls whose SigV4 signature the AWS SDK for Go's
  signer recomputes, and aws-iam-authenticator's own token verifier (pkg/token),
  behind a TokenReview webhook for the real kube-apiserver or over stdin.
- Python, plain HTTP on loopback: the instance metadata service (IMDSv2, with
  faults), a container credentials endpoint (ECS / EKS Pod Identity), and a
  proxy that counts connections (a proxy from the environment must get none)."""
import json
import os
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import certs
from conftest import Background

HERE = Path(__file__).resolve().parent
ACCOUNT = "111122223333"
PARTITIONS = ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"]

# access key id -> (secret, session token or None, principal); "{partition}" is
# filled by the stand-in with the partition of the STS host asked.
KEYS = {
    "AKIDEXAMPLE": ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, "iam::111122223333:user/admin"),
    # a session token as long as real ones, with the characters that need encoding
    "ASIAEXAMPLE2": ("abc/def+ghi=", "IQoJb3JpZ2luX2VjE" + "A/b+C=d" * 90 + "//tok+en==",
                     "sts::111122223333:assumed-role/dev/alice"),
    "AKIDINSTANCEROLE": ("instance/secret+key", "IQoJb3JpZ2luX2VjEXAMPLE/session+token=",
                         "sts::111122223333:assumed-role/bastion-role/i-0123456789abcdef0"),
    "AKIDFILE": ("file/secret+key", None, "iam::111122223333:user/bastion"),
    "ASIAPROCESS": ("process/secret", "process+token/=", "sts::111122223333:assumed-role/proc/p"),
    "ASIACONTAINER": ("container/secret", "container+token/=", "sts::111122223333:assumed-role/pod/p"),
    "AKIDSOURCE": ("source/secret", None, "iam::111122223333:user/source"),
}
ROLE_CREDS = {  # role name -> the key its sessions get
    "bastion-minter": ("ASIAASSUMEDROLE1", "assumed/secret+key2", "FwoGZXIvYXdzEAssumed/tok=="),
    "eks-admin": ("ASIAASSUMEDROLE2", "admin/secret+key3", "FwoGZXIvYXdzEAdmin/tok=="),
    "irsa": ("ASIAWEBIDENTITY1", "webid/secret", "FwoGZXIvYXdzEWebId/tok=="),
}
WEB_IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln"


def creds_env(akid):
    secret, token, _ = KEYS[akid]
    env = {"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret}
    if token:
        env["AWS_SESSION_TOKEN"] = token
    return env


def principals(clusters=None):
    def user_id(akid, principal):  # what GetCallerIdentity answers: ROLEID:SESSION for a role session
        if ":assumed-role/" in principal:
            return "AROA" + akid[4:] + ":" + principal.rsplit("/", 1)[1]
        return "AIDA" + akid[4:]

    keys = {k: {"secret": s, "session_token": t or "", "arn": f"arn:{{partition}}:{p}", "user_id": user_id(k, p)}
            for k, (s, t, p) in KEYS.items()}
    for name, (akid, secret, token) in ROLE_CREDS.items():
        # known before any AssumeRole, so that any stand-in can verify a session's tokens
        keys[akid] = {"secret": secret, "session_token": token, "user_id": "AROA" + akid[4:] + ":session",
                      "arn": f"arn:{{partition}}:sts::{ACCOUNT}:assumed-role/{name}/session"}
    roles = {}
    for part in PARTITIONS:
        for name, (akid, secret, token) in ROLE_CREDS.items():
            roles[f"arn:{part}:iam::{ACCOUNT}:role/{name}"] = {
                "access_key_id": akid, "secret": secret, "session_token": token, "user_id": "AROA" + akid[4:]}
    return {"account": ACCOUNT, "keys": keys, "roles": roles, "web_identity_token": WEB_IDENTITY_TOKEN,
            "clusters": clusters or {}}


def make_tls(d: Path):
    """A throwaway CA and a serving certificate for 127.0.0.1 (server.pem/.key)."""
    ca_cert, ca_key = certs.make_ca(d, "standin")
    certs.sign_cert(d, "server", ca_cert, ca_key)
    for f in d.iterdir():
        os.chmod(f, 0o644 if f.suffix == ".pem" else 0o600)
    return ca_cert


_binary = None


def standin_binary():
    """kc-aws-standin, built once per go.sum into ~/.cache/pam-kubeconfig."""
    global _binary
    if _binary is None:
        p = subprocess.run([str(HERE / "build")], capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"tests/eks/build failed:\n{p.stderr}")
        _binary = p.stdout.strip().splitlines()[-1]
    return _binary


class _Process(Background):
    """A kc-aws-standin server: started here, stopped here by its pid."""

    def __init__(self, args, log):
        self.log = log
        super().__init__([standin_binary(), *args])
        line = self.first_line()
        if not line.startswith("listening on "):
            raise RuntimeError(f"kc-aws-standin {args[0]} did not start: {self.stop()}")
        self.addr = line.split()[-1]
        self.url = f"https://{self.addr}"

    def events(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def close(self):
        self.stop()


class AwsStandin(_Process):
    """STS and EKS DescribeCluster, every signature checked with the AWS SDK for Go."""

    def __init__(self, tls_dir: Path, clusters=None):
        self.principals = tls_dir / f"principals-{time.monotonic_ns()}.json"
        self.principals.write_text(json.dumps(principals(clusters)))
        log = tls_dir / f"aws-{time.monotonic_ns()}.jsonl"
        super().__init__(["aws", "--cert", str(tls_dir / "server.pem"), "--key", str(tls_dir / "server.key"),
                          "--principals", str(self.principals), "--log", str(log)], log)

    def calls(self, action):
        return [e for e in self.events() if e.get("action") == action]


class Webhook(_Process):
    """aws-iam-authenticator's verifier as kube-apiserver's token webhook: a
    verified identity becomes the Kubernetes user pam-kubeconfig."""

    def __init__(self, tls_dir: Path, ca: Path, sts: AwsStandin, cluster_id, partition, region):
        log = tls_dir / f"webhook-{time.monotonic_ns()}.jsonl"
        super().__init__(["webhook", "--cert", str(tls_dir / "server.pem"), "--key", str(tls_dir / "server.key"),
                          "--cluster-id", cluster_id, "--partition", partition, "--region", region,
                          "--sts", sts.addr, "--sts-ca", str(ca), "--log", str(log)], log)
        self.kubeconfig = tls_dir / f"webhook-{self.addr.split(':')[1]}.kubeconfig"
        self.kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: webhook
  cluster:
    server: {self.url}/authenticate
    certificate-authority: {ca}
users:
- name: apiserver
  user: {{}}
contexts:
- name: webhook
  context: {{cluster: webhook, user: apiserver}}
current-context: webhook
""")

    def accepted(self):
        return [e["access_key_id"] for e in self.events() if e.get("ok")]

    def refused(self):
        return [e["error"] for e in self.events() if not e.get("ok")]


def verify(tokens, cluster_id, partition, region, sts: AwsStandin, ca: Path):
    """aws-iam-authenticator's verdict on each token: [{"ok": bool, "error": ...}]."""
    p = subprocess.run([standin_binary(), "verify", "--cluster-id", cluster_id, "--partition", partition,
                        "--region", region, "--sts", sts.addr, "--sts-ca", str(ca)],
                       input="".join(t + "\n" for t in tokens), capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"kc-aws-standin verify failed: {p.stderr}")
    return [json.loads(l) for l in p.stdout.splitlines()]


# ---- Python stand-ins on plain HTTP ------------------------------------------------

class Server:
    """A threading HTTP server on a free loopback port running handle(req)."""

    def __init__(self, handle):
        outer = self
        self.requests = []

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, headers, data = handle(self.command, self.path, self.headers, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials_doc(akid, expired=False):
    secret, token, _ = KEYS[akid]
    exp = datetime.now(timezone.utc) + (timedelta(hours=-1) if expired else timedelta(hours=6))
    return {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": token, "Expiration": iso(exp)}


class Imds:
    """IMDSv2 with switchable faults: ok, v1only, unauthorized, norole, missing,
    expired, slow."""

    ROLE = "bastion-role"

    def __init__(self, mode="ok", akid="AKIDINSTANCEROLE"):
        self.mode = mode
        self.akid = akid
        self.server = Server(self.handle)
        self.url = self.server.url

    def handle(self, method, path, headers, body):
        if self.mode == "slow":
            time.sleep(5)
        if path == "/latest/api/token":
            if method != "PUT" or self.mode == "v1only":
                return 403, {}, b""
            return 200, {}, b"imds-session-token"
        if headers.get("X-aws-ec2-metadata-token") != "imds-session-token" or self.mode == "unauthorized":
            return 401, {}, b""
        if path == "/latest/meta-data/iam/security-credentials/":
            return 200, {}, b"" if self.mode == "norole" else self.ROLE.encode()
        if path == f"/latest/meta-data/iam/security-credentials/{self.ROLE}":
            doc = {"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": iso(datetime.now(timezone.utc)),
                   **credentials_doc(self.akid, expired=self.mode == "expired")}
            if self.mode == "missing":
                del doc["Token"]
            return 200, {"Content-Type": "text/plain"}, json.dumps(doc).encode()
        return 404, {}, b""

    def close(self):
        self.server.close()


class Container:
    """The ECS / EKS Pod Identity credentials endpoint: answers only with the
    expected Authorization header."""

    def __init__(self, authorization, akid="ASIACONTAINER", path="/v1/credentials"):
        self.authorization = authorization
        self.akid = akid
        self.path = path
        self.server = Server(self.handle)
        self.url = self.server.url + path

    def handle(self, method, path, headers, body):
        if method != "GET" or path != self.path:
            return 404, {}, b""
        if headers.get("Authorization") != self.authorization:
            return 401, {}, b'{"message": "bad token"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(credentials_doc(self.akid)).encode()

    def close(self):
        self.server.close()


class RecordingProxy:
    """Counts connections made to it: a proxy from the environment must get none."""

    def __init__(self):
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
