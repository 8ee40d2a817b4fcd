"""The decisions table: one row per recorded decision (evaluation, order check, CDS Hooks call, feedback).

Revision ID: 0001
Revises:
Create Date: 2026-03-01
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(), nullable=True),
        sa.Column("knowledge_version", sa.String(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("patient_ref_hash", sa.String(), nullable=True),
        sa.Column("fired", _json(), nullable=False),
        sa.Column("not_evaluated", _json(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("facts", _json(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("detail", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decisions_recorded_at", "decisions", ["recorded_at"])
    op.create_index("ix_decisions_channel_recorded_at", "decisions", ["channel", "recorded_at"])
    op.create_index("ix_decisions_patient_ref_hash", "decisions", ["patient_ref_hash", "recorded_at"])
    op.create_index("ix_decisions_knowledge_version", "decisions", ["knowledge_version"])


def downgrade() -> None:
    op.drop_table("decisions")
