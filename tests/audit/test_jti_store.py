"""The shared CDS Hooks replay store (service.audit.jti) on SQLite and PostgreSQL: one claim per (iss, jti) across
engines (workers, replicas), expired rows taken over and swept, concurrent claims settled as one winner; and the
running service with WORKERS=2 refuses every replay (the per-process cache accepted most of them)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import jwt
import pytest
import yaml

from service.audit import migrate
from service.audit.jti import JtiStore, jti_key
from service.audit.store import make_engine

from ..cds_hooks.support import EXAMPLES, example, hook_request
from ..conftest import ROOT
from .test_store import backend, db_url   # noqa: F401 - the per-backend database fixtures
from ..test_supervisor import _free_port, _wait_ready

ISS = "https://ehr.example/fhir"
NOW = 1_800_000_000.0


def key(jti: str, iss: str = ISS) -> str:
    return f"{iss}\x1f{jti}"                 # as the verifier names a token (service.cds_hooks.security)


@pytest.fixture
def engines(db_url):   # noqa: F811
    """Two engines on one migrated database: two workers, or two replicas."""
    migrate.upgrade(db_url)
    made = [make_engine(db_url), make_engine(db_url)]
    yield made
    for e in made:
        e.dispose()


def test_one_claim_per_jti_across_engines(engines):
    a, b = JtiStore(engines[0]), JtiStore(engines[1])
    assert a.claim(key("t-1"), NOW + 300, NOW) is True
    assert a.claim(key("t-1"), NOW + 300, NOW + 1) is False       # replay on the same worker
    assert b.claim(key("t-1"), NOW + 300, NOW + 2) is False       # and on another one
    assert b.claim(key("t-1", "https://other.example"), NOW + 300, NOW) is True   # the key is (iss, jti)
    assert b.claim(key("t-1"), NOW + 900, NOW + 301) is True      # the earlier token can no longer be valid
    assert a.claim(key("t-1"), NOW + 900, NOW + 899) is False     # ... and the new claim holds until its expiry


def test_the_replay_guard_holds_a_key_through_the_leeway(engines):
    clock = [NOW]
    a, b = (JtiStore(e, leeway_s=30, clock=lambda: clock[0]) for e in engines)
    assert a.seen(key("t-2"), NOW + 60) is False                   # first use
    clock[0] = NOW + 85                                            # past exp, within the leeway: still valid
    assert b.seen(key("t-2"), NOW + 60) is True
    clock[0] = NOW + 91                                            # the token can no longer pass its exp check
    assert b.seen(key("t-2"), NOW + 600) is False


def test_expired_rows_are_swept(engines):
    store = JtiStore(engines[0], sweep_interval_s=60)
    for i in range(5):
        assert store.claim(key(f"old-{i}"), NOW + 10, NOW)         # the first claim sweeps (nothing yet)
    assert store.count() == 5
    assert store.claim(key("late"), NOW + 500, NOW + 30) and store.count() == 6   # no sweep within 60 s
    assert store.claim(key("later"), NOW + 500, NOW + 61)          # a sweep: the five old rows go
    assert store.count() == 2
    assert store.sweep(NOW + 10_000) == 2 and store.count() == 0


def test_concurrent_claims_have_one_winner(engines):
    stores = [JtiStore(e) for e in engines]
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def claim(k: int) -> None:
        barrier.wait(timeout=30)
        won = stores[k % 2].claim(key("contested"), NOW + 300, NOW)
        with lock:
            results.append(won)
    threads = [threading.Thread(target=claim, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False] * 7 + [True]


def test_the_key_holds_no_token_content():
    stored = jti_key(key("a-secret-looking-jti"))
    assert len(stored) == 64 and "secret" not in stored and stored != jti_key(key("a-secret-looking-jti", ISS + "x"))


def test_an_unmigrated_store_fails_closed(tmp_path):
    """No table (the database is not the audit store, or is down): the claim raises, and the verifier turns that
    into a refusal (tests/test_cds_hooks_security.py checks the 401 through the app)."""
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(Exception):
            JtiStore(engine).seen(key("t"), NOW + 1)
    finally:
        engine.dispose()


# --- the running service, two workers ---------------------------------------------------------------------------

def _issuers(tmp_path) -> tuple[str, dict]:
    (tmp_path / "jwks.json").write_text((EXAMPLES / "sandbox-jwks-public.json").read_text())
    (tmp_path / "issuers.yaml").write_text(yaml.safe_dump({"issuers": {
        "https://sandbox.cds-hooks.org": {"jwks_file": "jwks.json"}}}))
    return str(tmp_path / "issuers.yaml"), example("sandbox-jwk-keypair-PUBLIC-TEST-KEY.json")["keys"][0]


def _call(port: int, token: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/cds-services/ldn-order-sign",
                                 data=json.dumps(hook_request("order-sign")).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                                          "connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_two_workers_refuse_every_replay(tmp_path):
    issuers, private = _issuers(tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), WORKERS="2", LOG_LEVEL="warning", CDS_ISSUERS_FILE=issuers,
               PUBLIC_BASE_URL=base, DATABASE_URL=f"sqlite:///{tmp_path}/audit.db")
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = jwt.PyJWK(private).key
    try:
        _wait_ready(port, time.monotonic() + 90)
        first, replays = [], []
        for _ in range(50):
            now = int(time.time())
            token = jwt.encode({"iss": "https://sandbox.cds-hooks.org", "aud": f"{base}/cds-services/ldn-order-sign",
                                "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}, key, algorithm="ES384",
                               headers={"kid": private["kid"]})
            first.append(_call(port, token))
            replays.append(_call(port, token))      # a new connection: either worker may take it
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert first == [200] * 50
    assert replays == [401] * 50


def test_a_claim_behind_a_long_write_fails_closed_at_its_own_timeout(tmp_path, monkeypatch):
    """On SQLite the jti check takes its turn with the audit writers (service.audit.store.writing); behind a write
    that does not end it gives up at the replay check's own timeout (the token is then refused), not the writers'."""
    from service.audit import jti as jti_module
    from service.audit.store import writing
    url = f"sqlite:///{tmp_path}/audit.db"
    migrate.upgrade(url)
    engine = make_engine(url)
    store = JtiStore(engine)
    monkeypatch.setattr(jti_module, "STATEMENT_TIMEOUT_MS", 100)
    held, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with writing(engine):
            held.set()
            release.wait(3)
    holder = threading.Thread(target=long_write)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(TimeoutError):
            store.claim("iss\x1fjti-behind", time.time() + 60)
    finally:
        release.set()
        holder.join(10)
    assert store.claim("iss\x1fjti-behind", time.time() + 60)       # its turn comes once the write is done
    engine.dispose()
