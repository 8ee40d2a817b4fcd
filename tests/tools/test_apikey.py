"""`python -m tools.apikey ... >> keys.yaml`: the file gets the hash, never the key; the key (on stderr, or in a
file of its own) authenticates against the file the service loads."""
from __future__ import annotations

import re
import stat
import subprocess
import sys

from service.web.auth import Authenticator

from ..conftest import ROOT


def _issue(keys_file, *args: str) -> subprocess.CompletedProcess:
    cmd = f'"{sys.executable}" -m tools.apikey {" ".join(args)} >> "{keys_file}"'
    proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_appending_to_the_keys_file_never_stores_the_secret(tmp_path):
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text("keys:\n")
    first = _issue(keys_file, "--id", "pharmacy-a", "--scopes", "evaluate,order-check")
    (key_a,) = re.findall(r"ldn_[A-Za-z0-9_-]{43}", first.stderr)
    _issue(keys_file, "--id", "pharmacy-b", "--scopes", "audit-read", "--key-file", str(tmp_path / "b.key"))
    key_b = (tmp_path / "b.key").read_text().strip()
    stored = keys_file.read_text()
    assert key_a not in stored and key_b not in stored and "ldn_" not in stored
    assert stat.S_IMODE((tmp_path / "b.key").stat().st_mode) == 0o600
    auth = Authenticator.from_files(keys_file, None)
    principal_a, principal_b = auth.authenticate(key_a, None), auth.authenticate(key_b, None)
    assert principal_a is not None and principal_a.id == "pharmacy-a"
    assert set(principal_a.scopes) == {"evaluate", "order-check"}
    assert principal_b is not None and set(principal_b.scopes) == {"audit-read"}
    assert auth.authenticate("ldn_not-issued", None) is None


def test_a_key_file_is_never_overwritten(tmp_path):
    existing = tmp_path / "a.key"
    existing.write_text("someone else's key\n")
    proc = subprocess.run([sys.executable, "-m", "tools.apikey", "--id", "x", "--scopes", "evaluate",
                           "--key-file", str(existing)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and existing.read_text() == "someone else's key\n"
