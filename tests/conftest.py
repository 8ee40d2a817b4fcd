"""Shared fixtures: one knowledge base and one compiled engine for the whole session (building engines leaks
memory inside durable-rules, so tests that need another ruleset build it deliberately)."""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.decision import Evaluator
from service.knowledge.base import KnowledgeBase, load_knowledge

# Every app the tests build writes its audit trail to one throwaway SQLite file, never to the developer's var/.
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='ldn-test-audit-')}/audit.db")
os.environ.setdefault("AUDIT_FLUSH_INTERVAL_S", "0.05")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXED_TODAY = dt.date(2026, 3, 1)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture(scope="session")
def evaluator(kb: KnowledgeBase) -> Evaluator:
    return Evaluator(kb)


@pytest.fixture(scope="session")
def app(evaluator: Evaluator):
    return create_app(evaluator=evaluator)


@pytest.fixture(scope="session")
def client(app) -> TestClient:
    return TestClient(app)
