"""Feedback: the spec's examples are accepted and stored once (idempotent), invalid feedback is refused naming the
field, and overrides can be counted per service, rule and reason."""
from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.audit import migrate
from service.audit.feedback import FeedbackStore, FeedbackWrite, IssuedCard, IssuedCards
from service.audit.store import AuditStore
from service.cds_hooks.feedback import rows_of, summary
from service.cds_hooks.models import FeedbackRequest
from service.settings import Settings

from ..audit.test_store import backend, db_url, statements   # noqa: F401 - the per-backend database fixtures
from .support import (appointment, bundle, cards_by_rule, egfr, error_fields, example, hook_request,
                      ldn_draft, make_client, oxycodone, post_hook, record)

FEEDBACK = "/cds-services/ldn-order-sign/feedback"
EXAMPLES = ("spec3-feedback-accepted.json", "spec3-feedback-overridden-no-reason.json",
            "spec3-feedback-overridden-with-reason.json")


@pytest.fixture()
def client(evaluator):
    return make_client(evaluator)


@pytest.mark.parametrize("name", EXAMPLES)
def test_spec_examples_are_stored_once(client, name):
    body = example(name)
    first = client.post(FEEDBACK, json=body)
    assert first.status_code == 200 and first.json() == {"received": 1, "stored": 1, "duplicates": 0}
    again = client.post(FEEDBACK, json=body)
    assert again.json() == {"received": 1, "stored": 0, "duplicates": 1}


def test_the_same_instant_in_another_offset_is_the_same_feedback(client):
    item = example("spec3-feedback-overridden-no-reason.json")["feedback"][0]
    shifted = dict(item, outcomeTimestamp="2020-12-11T01:00:00+01:00")
    later = dict(item, outcomeTimestamp="2020-12-12T00:00:00Z")
    response = client.post(FEEDBACK, json={"feedback": [item, shifted, later]})
    assert response.json() == {"received": 3, "stored": 2, "duplicates": 1}


def test_feedback_is_kept_per_service(client):
    body = example("spec3-feedback-accepted.json")
    assert client.post(FEEDBACK, json=body).json()["stored"] == 1
    assert client.post("/cds-services/ldn-order-select/feedback", json=body).json()["stored"] == 1


@pytest.mark.parametrize("item,field", [
    ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "2021-12-11T10:05:31Z"}, "feedback[0]"),
    ({"card": "c", "outcome": "overridden", "overrideReason": {}, "outcomeTimestamp": "2021-12-11T10:05:31Z"},
     "feedback[0].overrideReason"),
    ({"card": "c", "outcome": "ignored", "outcomeTimestamp": "2021-12-11T10:05:31Z"}, "feedback[0].outcome"),
    ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2021-12-11"}, "feedback[0].outcomeTimestamp"),
    ({"card": "c", "outcome": "overridden", "outcomeTimestamp": 1639217131}, "feedback[0].outcomeTimestamp"),
    ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31"},
     "feedback[0].outcomeTimestamp"),
    ({"outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"}, "feedback[0].card"),
])
def test_invalid_feedback_is_refused(client, item, field):
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 422
    assert any(f.startswith(field) for f in error_fields(response)), response.json()


def test_unknown_service_is_404(client):
    assert client.post("/cds-services/nope/feedback", json=example("spec3-feedback-accepted.json")
                       ).status_code == 404


def test_override_analytics(client):
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(
        medicationRequests=bundle(oxycodone()), egfr=bundle(egfr(90)),
        appointments=bundle(appointment("a", "2026-03-02T08:00:00Z"))))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    opioid, periop = cards["ldn-opioid-coadministration"], cards["ldn-perioperative-hold"]
    reason = opioid["overrideReasons"][1]
    feedback = {"feedback": [
        {"card": opioid["uuid"], "outcome": "overridden", "overrideReason": {"reason": reason},
         "outcomeTimestamp": "2026-03-01T10:00:00Z"},
        {"card": periop["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-03-01T10:00:01Z",
         "acceptedSuggestions": [{"id": periop["suggestions"][0]["uuid"]}]},
        {"card": "unknown-card", "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:02Z",
         "overrideReason": {"userComment": "free text from a clinician"}}]}
    assert client.post(FEEDBACK, json=feedback).json()["stored"] == 3
    summary = client.get("/v1/cds-hooks/feedback-summary", params={"service_id": "ldn-order-sign"}).json()
    (service,) = summary["services"]
    assert (service["feedback"], service["accepted"], service["overridden"]) == (3, 1, 2)
    assert service["overridden_without_reason"] == 1
    assert service["override_reasons"] == [{**reason, "count": 1}]
    by_rule = {r["rule_id"]: r for r in service["by_rule"]}
    assert by_rule["ldn-opioid-coadministration"] == {"rule_id": "ldn-opioid-coadministration", "cards_issued": 1,
                                                      "accepted": 0, "overridden": 1}
    assert by_rule["ldn-perioperative-hold"]["accepted"] == 1
    assert "free text" not in str(summary)                   # comments are stored, never served by analytics


def _save(url: str, items) -> tuple[int, int]:
    store = AuditStore(url)
    got: list[tuple[int, int]] = []
    try:
        FeedbackStore(store.engine).write_batch([FeedbackWrite(rows_of("ldn-order-sign", items), got.append)])
        return got[0]
    finally:
        store.close()


def test_storage_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    migrate.upgrade(url)                          # the tables come from the audit store's migrations
    items = FeedbackRequest.model_validate(example("spec3-feedback-overridden-with-reason.json")).feedback
    assert _save(url, items) == (1, 0)
    assert _save(url, items) == (0, 1)
    store = AuditStore(url)
    (service,) = summary(FeedbackStore(store.engine)).services
    store.close()
    assert service.override_reasons[0].code == "d7ecf885" and service.override_reasons[0].display is None


def test_receipts_count_new_and_duplicate_feedback_on_both_databases(db_url):
    """On PostgreSQL the driver's rowcount is -1 for these inserts: every new item was counted a duplicate.
    Two stores on one database: two replicas."""
    migrate.upgrade(db_url)
    items = FeedbackRequest.model_validate(example("spec3-feedback-accepted.json")).feedback
    assert _save(db_url, items) == (1, 0)
    assert _save(db_url, items) == (0, 1)


def test_the_cards_of_a_batch_are_multi_row_statements(db_url):
    """The issued cards of every call in a batch go in multi-row INSERTs (see the audit store's test
    test_a_batch_is_a_few_multi_row_statements_of_few_shapes); a feedback POST is one more, its duplicates
    still counted."""
    migrate.upgrade(db_url)
    store = AuditStore(db_url)
    items = FeedbackRequest.model_validate(example("spec3-feedback-accepted.json")).feedback
    got: list[tuple[int, int]] = []
    calls = [IssuedCards("ldn-order-sign", f"hook-{i}", tuple(
        IssuedCard(str(uuid.uuid4()), "ldn-opioid-coadministration", "1.0.0", "critical") for _ in range(2)))
        for i in range(100)]
    try:
        with statements(store.engine) as seen:
            FeedbackStore(store.engine).write_batch(
                calls + [FeedbackWrite(rows_of("ldn-order-sign", items) * 2, got.append)] + calls[:10])
        assert [style for word, style, _ in seen if word == "INSERT"] == ["INSERTMANYVALUES"] * 6   # 220 cards: 128 + 64 + 16 + 8 + 4; feedback
        assert got == [(1, 1)]
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cds_card")).scalar_one() == 200
    finally:
        store.close()


def test_feedback_uses_the_audit_stores_one_engine(client):
    auditor = client.app.state.auditor
    assert auditor.feedback.engine is auditor.store.engine
    with auditor.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2          # FULL: every commit is durable
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0         # every call has a timeout


def test_a_store_that_does_not_answer_is_a_503_in_bounded_time(evaluator, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    c = make_client(evaluator, Settings(database_url=url, cds_feedback_timeout_s=0.5))
    lock = sqlite3.connect(make_url(url).database, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")                # another process holds the database
    try:
        response = c.post(FEEDBACK, json=example("spec3-feedback-accepted.json"))
        assert response.status_code == 503
        assert c.get("/healthz").status_code == 200
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert c.app.state.auditor.cds_writer.flush(timeout=60)     # written once the lock is gone
    again = c.post(FEEDBACK, json=example("spec3-feedback-accepted.json"))
    assert again.json() == {"received": 1, "stored": 0, "duplicates": 1}
