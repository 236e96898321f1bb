"""contest.sales_at_close: how many of the period's sales the close saw (late_sales counts the rest)

Revision ID: 0004_sales_at_close
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_sales_at_close"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable column: ADD COLUMN on SQLite and PostgreSQL alike (no table rebuild);
    # contests closed before it stay NULL and keep the old rule (imported after `closed_at`).
    op.add_column("contest", sa.Column("sales_at_close", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contest") as batch_op:
        batch_op.drop_column("sales_at_close")
