"""Action requests, approvals and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the states at this revision; a later revision that adds a state rewrites the check.
_STATES = (
    "pending",
    "approved",
    "executing",
    "succeeded",
    "failed",
    "unknown",
    "rejected",
    "expired",
    "cancelled",
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    states = ", ".join(f"'{state}'" for state in _STATES)
    op.create_table(
        "action_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("target_label", sa.String(), nullable=False),
        sa.Column("requester_id", sa.String(), nullable=False),
        sa.Column("requester_team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("approval_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("message_channel", sa.String(), nullable=True),
        sa.Column("message_ts", sa.String(), nullable=True),
        sa.Column("executor_id", sa.String(), nullable=True),
        sa.Column("lease_until", _utc(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("secret_fingerprint", sa.String(), nullable=True),
        sa.Column("sealed_secret", sa.Text(), nullable=True),
        sa.Column("profile", sa.String(), nullable=True),
        sa.Column("preview", sa.JSON(), nullable=True),
        sa.Column("preview_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_action_requests"),
        sa.CheckConstraint(f"state IN ({states})", name="ck_action_requests_state"),
        sa.CheckConstraint("approvals_required >= 1", name="ck_action_requests_approvals_required"),
        sa.CheckConstraint("approval_count >= 0", name="ck_action_requests_approval_count"),
    )
    op.create_index("ix_action_requests_state_expires_at", "action_requests", ["state", "expires_at"])
    op.create_index("ix_action_requests_state_lease_until", "action_requests", ["state", "lease_until"])
    op.create_index("ix_action_requests_requester_id_created_at", "action_requests", ["requester_id", "created_at"])
    op.create_index("ix_action_requests_channel_id_created_at", "action_requests", ["channel_id", "created_at"])

    op.create_table(
        "approvals",
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "user_id", name="pk_approvals"),
        sa.UniqueConstraint("request_id", "ordinal", name="uq_approvals_request_id_ordinal"),
        sa.ForeignKeyConstraint(["request_id"], ["action_requests.id"], name="fk_approvals_request_id_action_requests"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor_id", sa.String(), nullable=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["action_requests.id"], name="fk_audit_events_request_id_action_requests"
        ),
    )
    op.create_index("ix_audit_events_request_id_id", "audit_events", ["request_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_request_id_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("approvals")
    op.drop_index("ix_action_requests_channel_id_created_at", table_name="action_requests")
    op.drop_index("ix_action_requests_requester_id_created_at", table_name="action_requests")
    op.drop_index("ix_action_requests_state_lease_until", table_name="action_requests")
    op.drop_index("ix_action_requests_state_expires_at", table_name="action_requests")
    op.drop_table("action_requests")
