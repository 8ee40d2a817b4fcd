"""The worker's garbage collector: start-up's objects are frozen out of the collections (service/web/heap.py).
Checked in a fresh interpreter that imports the worker's entry point, as uvicorn does."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json
import service.main as worker
kb = worker.app.state.evaluator.kb
young = gc.get_objects()      # the generations a collection walks (the frozen ones are not among them)
print(json.dumps({"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(),
                  "kb_walked": any(o is kb for o in young), "rules_walked": any(o is kb.rules for o in young),
                  "walked": len(young)}))
"""


def test_the_knowledge_base_is_out_of_the_collectors_way(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/audit.db", "AUDIT_HMAC_SECRET": "x" * 32, "LOG_LEVEL": "WARNING",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert not probe["kb_walked"] and not probe["rules_walked"]
    assert probe["frozen"] > 10 * probe["walked"]           # nearly everything start-up built is frozen
    assert probe["threshold"][0] == 10_000
