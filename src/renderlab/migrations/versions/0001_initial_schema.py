"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:22:58.565609
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_rate_limits")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("token_identifier", sa.String(length=512), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("token_identifier", name=op.f("uq_users_token_identifier")),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("animation_props", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'complete', 'failed')", name=op.f("ck_generations_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_generations_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index("by_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "renders",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("generation_id", sa.String(length=26), nullable=False),
        sa.Column("render_id", sa.String(length=64), nullable=True),
        sa.Column("bucket_name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("output_url", sa.Text(), nullable=True),
        sa.Column("output_size", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("duration_in_frames", sa.Integer(), nullable=False),
        sa.Column("output_key", sa.String(length=512), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("quota_refunded", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'rendering', 'complete', 'failed')",
            name=op.f("ck_renders_status"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_renders_attempts")),
        sa.CheckConstraint("duration_in_frames > 0 AND fps > 0", name=op.f("ck_renders_frames")),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name=op.f("ck_renders_progress")),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_renders_size")),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_renders_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_renders_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renders")),
    )
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.create_index("by_generation", ["generation_id", "created_at"], unique=False)
        batch_op.create_index("by_status", ["status", "created_at"], unique=False)
        batch_op.create_index("by_updated", ["updated_at"], unique=False)
        batch_op.create_index("by_user", ["user_id", "created_at"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("render_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["render_id"],
            ["renders.id"],
            name=op.f("fk_idempotency_keys_render_id_renders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "render_chunks",
        sa.Column("render_id", sa.String(length=26), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("segment_key", sa.String(length=512), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'rendering', 'complete', 'failed')",
            name=op.f("ck_render_chunks_status"),
        ),
        sa.CheckConstraint(
            "frames_done >= 0 AND frames_done <= end_frame - start_frame",
            name=op.f("ck_render_chunks_done"),
        ),
        sa.CheckConstraint(
            "start_frame >= 0 AND end_frame > start_frame", name=op.f("ck_render_chunks_range")
        ),
        sa.ForeignKeyConstraint(
            ["render_id"],
            ["renders.id"],
            name=op.f("fk_render_chunks_render_id_renders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("render_id", "index", name=op.f("pk_render_chunks")),
    )


def downgrade() -> None:
    op.drop_table("render_chunks")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.drop_index("by_user")
        batch_op.drop_index("by_updated")
        batch_op.drop_index("by_status")
        batch_op.drop_index("by_generation")

    op.drop_table("renders")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("by_user_created")

    op.drop_table("generations")
    op.drop_table("users")
    op.drop_table("rate_limits")
