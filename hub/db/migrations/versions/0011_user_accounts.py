"""user accounts: console users with several roles, server-side sessions, API keys tied to an account

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import BIG_ID, id_column, time_column, timestamps

revision: str = "0011"
down_revision: str | None = "0010"


def upgrade() -> None:
    op.create_table(
        "users",
        id_column(),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        time_column("password_changed_at"),
        time_column("disabled_at", nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        time_column("locked_until", nullable=True),
        time_column("last_login_at", nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    op.create_index(op.f("ix_user_roles_role"), "user_roles", ["role"], unique=False)
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        time_column("created_at"),
        time_column("last_seen_at"),
        time_column("idle_expires_at"),
        time_column("absolute_expires_at"),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"], unique=False)
    op.create_index(
        op.f("ix_console_sessions_absolute_expires_at"),
        "console_sessions",
        ["absolute_expires_at"],
        unique=False,
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("account", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_api_keys_account"), ["account"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(batch.f("ix_api_keys_account"))
        batch.drop_column("account")
    op.drop_index(op.f("ix_console_sessions_absolute_expires_at"), table_name="console_sessions")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_user_roles_role"), table_name="user_roles")
    op.drop_table("user_roles")
    op.drop_table("users")
