"""an index for a user's renders by status: the concurrency cap counts them on every start

``pipeline.start.check_concurrency`` counts the user's ``pending`` and ``rendering`` renders
inside the start transaction. With only ``by_user`` (user_id, created_at) and ``by_cache_key``
to choose from, that count read every render the user ever made: a start slowed down with the
user's history. ``by_user_status`` reads only the ones that count. An index only: rows are
untouched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.create_index("by_user_status", ["user_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.drop_index("by_user_status")
