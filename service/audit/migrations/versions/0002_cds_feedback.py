"""The CDS Hooks analytics tables: cards issued (no patient data) and the feedback on them.

Before this revision they were created by the feedback store itself (create_all) in the same database; a store
that already has them is adopted as it is (same columns, same unique key).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "cds_card" not in existing:
        op.create_table(
            "cds_card",
            sa.Column("card_uuid", sa.String(64), nullable=False),
            sa.Column("service_id", sa.String(64), nullable=False),
            sa.Column("hook_instance", sa.String(256), nullable=False),
            sa.Column("rule_id", sa.String(128), nullable=False),
            sa.Column("rule_version", sa.String(64), nullable=False),
            sa.Column("indicator", sa.String(16), nullable=False),
            sa.Column("issued_at", sa.String(40), nullable=False),
            sa.PrimaryKeyConstraint("card_uuid"),
        )
    if "cds_feedback" not in existing:
        op.create_table(
            "cds_feedback",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("service_id", sa.String(64), nullable=False),
            sa.Column("card_uuid", sa.String(256), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("outcome_timestamp", sa.String(40), nullable=False),
            sa.Column("accepted_suggestions", sa.Text(), nullable=True),
            sa.Column("reason_system", sa.String(500), nullable=True),
            sa.Column("reason_code", sa.String(200), nullable=True),
            sa.Column("reason_display", sa.String(500), nullable=True),
            sa.Column("user_comment", sa.Text(), nullable=True),
            sa.Column("received_at", sa.String(40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("service_id", "card_uuid", "outcome_timestamp", name="uq_cds_feedback_key"),
        )


def downgrade() -> None:
    op.drop_table("cds_feedback")
    op.drop_table("cds_card")
