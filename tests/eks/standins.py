"""Loopback stand-ins for what cannot be reached here: the instance metadata
service, STS, the EKS API, and a webhook token authenticator for the real
kube-apiserver that checks k8s-aws-v1 tokens the way aws-iam-authenticator does,
by recomputing the SigV4 signature (an implementation independent of ours)."""
import base64
import hashlib
import hmac
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import certs  # noqa: E402

CREDS = {
    "AKIDINSTANCEROLE": ("instance/secret+key", "IQoJb3JpZ2luX2VjEXAMPLE/session+token="),
    "ASIAASSUMEDROLE1": ("assumed/secret+key2", "FwoGZXIvYXdzEAssumed/tok=="),
}
ROLE = "bastion-role"


def make_ca(d: Path):
    """A throwaway CA and a serving certificate for 127.0.0.1 (server.pem/.key),
    for the HTTPS stand-ins. Returns the CA's certificate."""
    ca_cert, ca_key = certs.make_ca(d, "standin")
    certs.sign_cert(d, "server", ca_cert, ca_key)
    return ca_cert


class Server:
    """A threading HTTP(S) server on a free loopback port running handle(req)."""

    def __init__(self, handle, tls_dir=None):
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
                if status is None:
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        if tls_dir:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_dir / "server.pem", tls_dir / "server.key")
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Imds:
    """IMDSv2 with switchable faults: ok, v1only, unauthorized, norole, missing,
    expired, slow."""

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
            return 200, {}, b"" if self.mode == "norole" else ROLE.encode()
        if path == f"/latest/meta-data/iam/security-credentials/{ROLE}":
            secret, token = CREDS[self.akid]
            exp = datetime.now(timezone.utc) + (timedelta(hours=-1) if self.mode == "expired" else timedelta(hours=6))
            doc = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": self.akid, "SecretAccessKey": secret,
                   "Token": token, "Expiration": iso(exp), "LastUpdated": iso(datetime.now(timezone.utc))}
            if self.mode == "missing":
                del doc["Token"]
            return 200, {"Content-Type": "text/plain"}, json.dumps(doc).encode()
        return 404, {}, b""

    def close(self):
        self.server.close()


def _signing_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _q(s):
    return urllib.parse.quote(s, safe="-_.~")


def verify_eks_token(token, cluster_name, now=None):
    """Returns the access key id the token was signed with, or raises ValueError."""
    if not token.startswith("k8s-aws-v1."):
        raise ValueError("not a k8s-aws-v1 token")
    raw = token[len("k8s-aws-v1."):]
    url = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    u = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True, strict_parsing=True)
    q = dict(pairs)
    if q.get("Action") != "GetCallerIdentity" or q.get("X-Amz-Expires") != "60":
        raise ValueError("not a 60s GetCallerIdentity presign")
    if q.get("X-Amz-SignedHeaders") != "host;x-k8s-aws-id":
        raise ValueError("x-k8s-aws-id not signed")
    akid, date, region, service, term = q["X-Amz-Credential"].split("/")
    when = datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    if abs((now or datetime.now(timezone.utc)) - when) > timedelta(minutes=15):
        raise ValueError("token too old or from the future")
    if akid not in CREDS or service != "sts":
        raise ValueError("unknown key")
    canon_q = "&".join(sorted(f"{_q(k)}={_q(v)}" for k, v in pairs if k != "X-Amz-Signature"))
    canonical = "\n".join(["GET", u.path or "/", canon_q, f"host:{u.netloc}", f"x-k8s-aws-id:{cluster_name}", "",
                           "host;x-k8s-aws-id", hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", q["X-Amz-Date"], f"{date}/{region}/{service}/aws4_request",
                     hashlib.sha256(canonical.encode()).hexdigest()])
    sig = hmac.new(_signing_key(CREDS[akid][0], date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig, q["X-Amz-Signature"]):
        raise ValueError("bad signature")
    return akid


class Webhook:
    """A TokenReview webhook for kube-apiserver: k8s-aws-v1 tokens for cluster_name
    signed with a known key authenticate as the user pam-kubeconfig."""

    def __init__(self, tls_dir, ca_file, cluster_name):
        self.cluster_name = cluster_name
        self.accepted = []
        self.server = Server(self.handle, tls_dir)
        self.kubeconfig = tls_dir / "webhook.kubeconfig"
        self.kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: webhook
  cluster:
    server: {self.server.url}/authenticate
    certificate-authority: {ca_file}
users:
- name: apiserver
  user: {{}}
contexts:
- name: webhook
  context: {{cluster: webhook, user: apiserver}}
current-context: webhook
""")

    def handle(self, method, path, headers, body):
        review = json.loads(body)
        token = review.get("spec", {}).get("token", "")
        status = {"authenticated": False}
        try:
            akid = verify_eks_token(token, self.cluster_name)
            self.accepted.append(akid)
            status = {"authenticated": True,
                      "user": {"username": "pam-kubeconfig", "uid": f"aws-iam-authenticator:{akid}"}}
        except (ValueError, KeyError) as e:
            status["error"] = str(e)
        out = {"apiVersion": review.get("apiVersion"), "kind": "TokenReview", "status": status}
        return 200, {"Content-Type": "application/json"}, json.dumps(out).encode()

    def close(self):
        self.server.close()


class Eks:
    """DescribeCluster for one cluster, answering with the real test cluster."""

    def __init__(self, tls_dir, name, server, ca_pem):
        self.name = name
        self.endpoint = server
        self.ca = base64.b64encode(Path(ca_pem).read_bytes()).decode()
        self.arn = f"arn:aws:eks:us-west-2:111122223333:cluster/{name}"
        self.server = Server(self.handle, tls_dir)
        self.url = self.server.url

    def handle(self, method, path, headers, body):
        auth = headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential=") or "/us-west-2/eks/aws4_request" not in auth:
            return 403, {}, b'{"message": "missing signature"}'
        if method != "GET" or path != f"/clusters/{self.name}":
            return 404, {}, b'{"message": "No cluster found"}'
        doc = {"cluster": {"name": self.name, "arn": self.arn, "endpoint": self.endpoint, "status": "ACTIVE",
                           "certificateAuthority": {"data": self.ca}, "version": "1.33"}}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    def close(self):
        self.server.close()


class Sts:
    """STS AssumeRole: answers with the assumed role's credentials."""

    def __init__(self, tls_dir):
        self.server = Server(self.handle, tls_dir)
        self.url = self.server.url
        self.calls = []

    def handle(self, method, path, headers, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        self.calls.append(form)
        if form.get("Action") != "AssumeRole" or not headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            return 400, {}, b"<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>"
        secret, token = CREDS["ASIAASSUMEDROLE1"]
        exp = iso(datetime.now(timezone.utc) + timedelta(hours=1))
        xml = (f"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAASSUMEDROLE1</AccessKeyId>"
               f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken>"
               f"<Expiration>{exp}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>")
        return 200, {"Content-Type": "text/xml"}, xml.encode()

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
