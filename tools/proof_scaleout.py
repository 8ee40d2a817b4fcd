"""Scale-out proof on this machine: nginx (Debian's package) in front of two service processes, one PostgreSQL.

    make proof-scaleout            # tests/test_proof_scaleout.py runs it in `make test`

Everything listens on 127.0.0.1 only. nginx runs in the foreground with deploy/nginx's template rendered for
loopback ports (the same file compose uses); the replicas run `python -m service.serve` under production settings
(API keys, trusted CDS issuer, audit HMAC secret, the proxy as FORWARDED_ALLOW_IPS) on a fresh database of the
.ci/postgres.sh cluster (TEST_DATABASE_URL). It checks, and prints with its figures:
  1. a CDS Hooks token used on one replica and replayed on the other (or through the proxy) is refused;
  2. an evaluation answered by one replica is readable by id from the other;
  3. the same feedback sent to both replicas is stored once;
  4. a slow client at the proxy is cut by nginx and never reaches a worker (a direct one is held by uvicorn);
  5. SIGKILL of one replica during proxied GETs loses none of them, and the decisions it committed are intact.
Loops are bounded by counts; nothing is timed. Exit status 1 when any check fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tools.scratch_db import fresh_database

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "ldn-cds.conf.template"
ISS = "https://ehr.proof.example/fhir"
EVALUATION = {"as_of": "2026-03-01", "patient": {"id": "proof-patient"}, "ldn": {"status": "active", "dose_mg": 4.5},
              "medications": [{"name": "Oxycodone 5 mg tablet", "status": "active"}]}
POLL = 200                  # bounded waits: attempts of 0.05 s each
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], attempts: int = POLL) -> bool:
    for _ in range(attempts):
        if predicate():
            return True
        threading.Event().wait(0.05)
    return False


class Issuer:
    """A CDS client of our own: an ES384 key pair, its public JWK Set in a file, tokens minted per call."""

    def __init__(self, folder: Path):
        self.key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        public.update(kid="proof-1", alg="ES384", use="sig")
        (folder / "jwks.json").write_text(json.dumps({"keys": [public]}))
        self.file = folder / "cds-issuers.yaml"
        self.file.write_text(yaml.safe_dump({"issuers": {ISS: {"jwks_file": "jwks.json"}}}))

    def token(self, aud: str) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        return {"Authorization": "Bearer " + jwt.encode(claims, self.key, "ES384", headers={"kid": "proof-1"})}


def api_key(folder: Path) -> tuple[Path, str]:
    """Issued the documented way: the hashed entry appended to the keys file, the key in a file of its own."""
    keys = folder / "api-keys.yaml"
    keys.write_text("keys:\n")
    with keys.open("a") as out:
        subprocess.run([sys.executable, "-m", "tools.apikey", "--id", "proof", "--scopes",
                        "evaluate,order-check,audit-read", "--key-file", str(folder / "proof.key")],
                       cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL, check=True)
    return keys, (folder / "proof.key").read_text().strip()


class Replica:
    def __init__(self, name: str, folder: Path, port: int, env: dict[str, str]):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = (folder / f"replica-{name}.log").open("wb")
        env = {**env, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=folder)}
        self.proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env,
                                     start_new_session=True, stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Nginx:
    """Debian's nginx in the foreground: a top-level config of our own that includes the rendered template."""

    def __init__(self, binary: str, folder: Path, upstreams: list[int]):
        self.folder, self.port = folder / "nginx", free_port()
        self.folder.mkdir()
        os.chmod(folder, 0o711)                   # nginx's workers (nobody, when run as root) traverse it
        self.access_log = self.folder / "access.log"
        rendered = string.Template(TEMPLATE.read_text()).safe_substitute(
            LDN_UPSTREAM_SERVERS=" ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams),
            LDN_LISTEN=f"127.0.0.1:{self.port}", LDN_TLS="# TLS: terminated here in deployment (compose)")
        (self.folder / "ldn-cds.conf").write_text(rendered)
        temp = "\n".join(f"    {kind}_temp_path {self.folder}/{kind}_temp;"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        (self.folder / "nginx.conf").write_text(f"""{user}
daemon off;
worker_processes 1;
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format proof '$request_method $uri $status upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {self.access_log} proof;
{temp}
    include {self.folder}/ldn-cds.conf;
}}
""")
        test = subprocess.run([binary, "-t", "-q", "-p", str(self.folder), "-e", str(self.folder / "error.log"),
                               "-c", str(self.folder / "nginx.conf")], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {test.stderr}")
        self.proc = subprocess.Popen([binary, "-p", str(self.folder), "-e", str(self.folder / "error.log"),
                                      "-c", str(self.folder / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    def accepting(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)         # graceful: finish, then exit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def order_sign() -> dict[str, Any]:
    return {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/proof", "patientId": "proof-patient",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}}}


# --- the checks -------------------------------------------------------------------------------------------------

def check_replay(a: Replica, b: Replica, proxy: Nginx, issuer: Issuer, public: str) -> None:
    aud = f"{public}/cds-services/ldn-order-sign"
    first, other, via_proxy = [], [], []
    for i in range(20):
        used, replayed = (a, b) if i % 2 == 0 else (b, a)
        headers = issuer.token(aud)
        first.append(httpx.post(f"{used.url}/cds-services/ldn-order-sign", json=order_sign(), headers=headers,
                                timeout=30).status_code)
        other.append(httpx.post(f"{replayed.url}/cds-services/ldn-order-sign", json=order_sign(),
                                headers=headers, timeout=30).status_code)
        via_proxy.append(httpx.post(f"{proxy.url}/cds-services/ldn-order-sign", json=order_sign(),
                                    headers=headers, timeout=30).status_code)
    check(first == [200] * 20, f"CDS Hooks tokens accepted on first use: {first.count(200)}/20 (10 on each replica)")
    check(other == [401] * 20, f"the same tokens replayed on the other replica: {other.count(401)}/20 refused (401)")
    check(via_proxy == [401] * 20, f"replayed once more through the proxy: {via_proxy.count(401)}/20 refused")


def evaluate(replica: Replica, key: str, n: int) -> list[dict[str, Any]]:
    answers = []
    for _ in range(n):
        r = httpx.post(f"{replica.url}/v1/evaluations", json=EVALUATION, headers={"X-API-Key": key}, timeout=30)
        r.raise_for_status()
        answers.append(r.json())
    return answers


def read_record(base: str, key: str, record_id: str) -> dict[str, Any] | None:
    r = httpx.get(f"{base}/v1/evaluations/{record_id}", headers={"X-API-Key": key}, timeout=30)
    return r.json() if r.status_code == 200 else None


def read_when_written(base: str, key: str, record_id: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = []
    wait_until(lambda: bool(record := read_record(base, key, record_id)) and not found.append(record))
    return found[0] if found else None


def check_read_across(a: Replica, b: Replica, key: str) -> None:
    for answered_by, read_from in ((a, b), (b, a)):
        answers = evaluate(answered_by, key, 5)
        same = 0
        for answer in answers:
            record = read_when_written(read_from.url, key, answer["evaluation_id"])
            fired = sorted(adv["rule_id"] for adv in answer["advisories"])
            if record and record["id"] == answer["evaluation_id"] and \
                    sorted(f["rule_id"] for f in record["fired"]) == fired and fired:
                same += 1
        check(same == 5, f"evaluations answered by replica {answered_by.name}, read by id from replica "
                         f"{read_from.name}: {same}/5 found with the same fired rules")


def check_feedback(a: Replica, b: Replica, issuer: Issuer, public: str, db_url: str) -> None:
    path = "/cds-services/ldn-order-sign/feedback"
    cards = [str(uuid.uuid4()) for _ in range(5)]
    receipts = []
    for card in cards:
        body = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:05:31Z",
                              "overrideReason": {"reason": {"system": "http://hl7.org/fhir/CodeSystem/"
                                                            "cdshooks-override-reason", "code": "cds-not-applicable"}}}]}
        for replica in (a, b):
            r = httpx.post(f"{replica.url}{path}", json=body, headers=issuer.token(public + path), timeout=30)
            receipts.append((r.status_code, r.json().get("stored"), r.json().get("duplicates")))
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM cds_feedback WHERE card_uuid = ANY(:c)"), {"c": cards}).scalar()
    engine.dispose()
    expected = [(200, 1, 0), (200, 0, 1)] * 5
    check(receipts == expected and rows == 5,
          f"the same feedback sent to both replicas (5 cards): stored by the first {sum(r[1] == 1 for r in receipts)}"
          f"x, duplicate at the second {sum(r[2] == 1 for r in receipts)}x; rows in PostgreSQL: {rows}")


def _evaluation_requests(replicas: list[Replica]) -> float:
    total = 0.0
    for replica in replicas:
        for line in httpx.get(f"{replica.url}/metrics", timeout=30).text.splitlines():
            if line.startswith('ldn_requests_total{channel="evaluation"'):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _stalled(port: int, partial: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(partial)
    return s


def _closed_by_peer(s: socket.socket) -> bytes:
    """What the peer sent before closing (the socket's 60 s timeout bounds the wait)."""
    received = b""
    with contextlib.suppress(OSError):
        for _ in range(100):
            chunk = s.recv(4096)
            if not chunk:
                break
            received += chunk
    return received


def check_slow_client(a: Replica, b: Replica, proxy: Nginx, key: str) -> None:
    before = _evaluation_requests([a, b])
    head = (f"POST /v1/evaluations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"as_of\"").encode()
    slow_headers = _stalled(proxy.port, b"POST /v1/evaluations HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    slow_body = _stalled(proxy.port, head)
    direct = _stalled(a.port, head)
    answered = httpx.get(f"{proxy.url}/v1/rules", headers={"X-API-Key": key}, timeout=30).status_code
    check(answered == 200, "while two slow clients stall at the proxy, other requests through it are answered")
    cut_body, cut_headers = _closed_by_peer(slow_body), _closed_by_peer(slow_headers)
    # nginx closes a timed-out client without a response (it logs 408); either way the connection is gone.
    check(cut_body == b"" or cut_body.startswith(b"HTTP/1.1 408"),
          "nginx closed the client whose body stalled (client_body_timeout)")
    check(cut_headers == b"" or cut_headers.startswith(b"HTTP/1.1 408"),
          "nginx closed the client whose headers stalled (client_header_timeout)")
    never_sent = [line for line in proxy.log_lines() if line.startswith("POST /v1/evaluations 408")]
    check(bool(never_sent) and all("upstream=-" in line for line in never_sent),
          f"the stalled request was never sent to a replica (nginx log: {never_sent[-1] if never_sent else '-'})")
    after = _evaluation_requests([a, b])
    check(after == before, f"evaluation requests the replicas saw complete meanwhile: {after - before:.0f}")
    readable, _, _ = select.select([direct], [], [], 0)
    check(not readable, "the same slow client sent straight to a replica is still held open by it after nginx cut "
                        "its own (uvicorn has no body timeout: why the proxy is in front)")
    direct.close()


def _proxied_gets(proxy: Nginx, key: str, paths: list[str], kill_after: int, kill: Callable[[], None]) -> list[int]:
    statuses: list[int] = []
    lock, killed = threading.Lock(), threading.Event()
    todo = list(enumerate(paths))

    def worker() -> None:
        with httpx.Client(timeout=30, headers={"X-API-Key": key}) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    _, path = todo.pop(0)
                try:
                    status = client.get(proxy.url + path).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    statuses.append(status)
                    if len(statuses) == kill_after and not killed.is_set():
                        killed.set()
                        kill()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return statuses


def check_sigkill(a: Replica, b: Replica, proxy: Nginx, key: str, db_url: str) -> None:
    committed = [answer["evaluation_id"] for answer in evaluate(a, key, 20)]
    before = {i: read_when_written(b.url, key, i) for i in committed}
    check(all(before.values()), f"replica A's decisions committed before the kill: {sum(map(bool, before.values()))}/20")
    log_mark = len(proxy.log_lines())
    paths = [f"/v1/evaluations/{committed[i % 20]}" if i % 2 else "/v1/rules" for i in range(300)]
    statuses = _proxied_gets(proxy, key, paths, kill_after=60, kill=lambda: a.signal_group(signal.SIGKILL))
    a.proc.wait(timeout=60)
    retried = [line for line in proxy.log_lines()[log_mark:] if ", " in line.split("upstream=", 1)[1]]
    check(statuses == [200] * 300 and a.proc.returncode == -signal.SIGKILL and len(retried) >= 1,
          f"SIGKILL of replica A after 60 of 300 proxied GETs (4 at a time): {statuses.count(200)}/300 answered 200, "
          f"{len(retried)} of them retried by nginx on replica B after A failed")
    after = {i: read_record(proxy.url, key, i) for i in committed}
    check(after == before, f"A's committed decisions read back through the proxy (B alone) after the kill: "
                           f"{sum(after[i] == before[i] for i in committed)}/20 identical")
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM decisions WHERE id = ANY(:ids)"), {"ids": committed}).scalar()
    engine.dispose()
    check(stored == 20, f"rows of those decisions in PostgreSQL: {stored}/20")


def print_metrics(replica: Replica) -> None:
    text_ = httpx.get(f"{replica.url}/metrics", timeout=30).text
    for line in text_.splitlines():
        if line.startswith(("ldn_build_info{", "ldn_requests_total{")):
            print(f"     replica {replica.name} {line}")



def replica_env(folder: Path, db_url: str, public: str, keys: Path, issuer: Issuer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDN_", "AUDIT_", "CDS_", "PROMETHEUS_"))}
    return {**env, "HOST": "127.0.0.1", "WORKERS": "1", "LOG_LEVEL": "warning", "LDN_ENV": "production",
            "DATABASE_URL": db_url, "AUDIT_HMAC_SECRET": secrets.token_hex(32), "AUDIT_FLUSH_INTERVAL_S": "0.05",
            "API_KEYS_FILE": str(keys), "CDS_ISSUERS_FILE": str(issuer.file), "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "PUBLIC_BASE_URL": public, "SHUTDOWN_DRAIN_S": "0"}


def run(nginx_binary: str, server_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ldn-proof-") as tmp, fresh_database(server_url, "ldn_proof") as db_url, \
            contextlib.ExitStack() as stack:
        folder = Path(tmp)
        issuer, (keys, key) = Issuer(folder), api_key(folder)
        ports = [free_port(), free_port()]
        proxy = Nginx(nginx_binary, folder, ports)   # its URL is the replicas' PUBLIC_BASE_URL (the JWT aud)
        stack.callback(proxy.stop)
        env = replica_env(folder, db_url, proxy.url, keys, issuer)
        a, b = Replica("A", folder, ports[0], env), Replica("B", folder, ports[1], env)
        stack.callback(a.stop)
        stack.callback(b.stop)
        up = wait_until(a.ready, 1200) and wait_until(b.ready, 1200) and wait_until(proxy.accepting)
        check(up, f"nginx on {proxy.url} in front of replica A ({a.url}) and B ({b.url}), one PostgreSQL database")
        if not up:
            return
        check_replay(a, b, proxy, issuer, proxy.url)
        check_read_across(a, b, key)
        check_feedback(a, b, issuer, proxy.url, db_url)
        check_slow_client(a, b, proxy, key)
        print_metrics(a)
        check_sigkill(a, b, proxy, key, db_url)


def main() -> int:
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        print("TEST_DATABASE_URL is not set: run `make proof-scaleout` (it starts .ci/postgres.sh)", file=sys.stderr)
        return 2
    nginx_binary = subprocess.run(["bash", str(ROOT / ".ci" / "nginx.sh")], capture_output=True, text=True,
                                  check=True).stdout.strip()
    print(f"scale-out proof: {subprocess.run([nginx_binary, '-v'], capture_output=True, text=True).stderr.strip()}, "
          "two replicas (python -m service.serve, WORKERS=1 each), PostgreSQL; loopback only", flush=True)
    run(nginx_binary, server_url)
    print(f"scale-out proof: {'all checks passed' if not failures else f'{len(failures)} FAILED'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
