"""failed binds, for the invite throttle (issue 12)

Revision ID: 0005_bind_failures
Revises: 0004_sales_at_close
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005_bind_failures"
down_revision = "0004_sales_at_close"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bindfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("user_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bindfailure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bindfailure_failed_at"), ["failed_at"], unique=False)
        batch_op.create_index("ix_bindfailure_account", ["platform", "user_ref", "failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bindfailure", schema=None) as batch_op:
        batch_op.drop_index("ix_bindfailure_account")
        batch_op.drop_index(batch_op.f("ix_bindfailure_failed_at"))
    op.drop_table("bindfailure")
