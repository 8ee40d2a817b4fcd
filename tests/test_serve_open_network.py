"""Secure by default: open mode (no authentication) only on loopback. Any other bind needs authentication, or the
loudly named opt-out for a closed test network (LDN_ALLOW_OPEN_NETWORK with its exact value)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from service.serve import is_loopback, refusals
from service.settings import OPEN_NETWORK_CONSENT, Settings

from .conftest import ROOT


def _serve(tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PORT": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db"}
    return subprocess.run([sys.executable, "-m", "service.serve"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("opt_out", [None, "yes", "1", OPEN_NETWORK_CONSENT.upper()])
def test_open_mode_beyond_loopback_does_not_start(tmp_path, opt_out):
    env = {"HOST": "0.0.0.0"} | ({"LDN_ALLOW_OPEN_NETWORK": opt_out} if opt_out else {})
    proc = _serve(tmp_path, **env)
    assert proc.returncode == 2
    assert "no authentication on /v1/* and /cds-services while listening on 0.0.0.0" in proc.stderr
    assert f"LDN_ALLOW_OPEN_NETWORK={OPEN_NETWORK_CONSENT}" in proc.stderr
    assert "Uvicorn running" not in proc.stderr and "Started parent process" not in proc.stderr


def test_half_configured_auth_beyond_loopback_names_the_open_part(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: []\n")
    proc = _serve(tmp_path, HOST="::", API_KEYS_FILE=str(keys))
    assert proc.returncode == 2 and "no authentication on /cds-services while listening on ::" in proc.stderr


def test_which_binds_may_run_open(tmp_path):
    for host in ("127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"):
        assert is_loopback(host) and refusals(Settings(host=host)) == []
    for host in ("0.0.0.0", "::", "10.0.0.5", "ldn.internal", ""):
        assert not is_loopback(host) and len(refusals(Settings(host=host))) == 1
    assert refusals(Settings(host="0.0.0.0", ldn_allow_open_network=OPEN_NETWORK_CONSENT)) == []
    keys, issuers = tmp_path / "keys.yaml", tmp_path / "issuers.yaml"
    keys.write_text("keys: []\n")
    issuers.write_text("issuers: {}\n")
    assert refusals(Settings(host="0.0.0.0", api_keys_file=keys, cds_issuers_file=issuers)) == []
