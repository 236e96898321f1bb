"""contest corrections (issue 14): edits and cancellations logged, minimum ratings, featured, frozen revenue,
recurring monthly targets, sales reversals

Revision ID: 0006_contest_corrections
Revises: 0005_bind_failures
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_contest_corrections"
down_revision = "0005_bind_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Contests that exist already keep the rule they were announced with (no minimum number of
    # ratings: 1); new ones get the model's default (3). Plain ADD COLUMNs on both backends.
    op.add_column("contest", sa.Column("min_ratings", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("contest", sa.Column("featured", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("contest", sa.Column("cancelled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("contest", sa.Column("cancelled_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    for table in ("standing", "contestresult"):
        op.add_column(table, sa.Column("revenue_fen", sa.BigInteger(), nullable=True))
    op.add_column("target", sa.Column("monthly", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Corrections of the sales ledger: plain columns (no foreign key, which would rebuild the table
    # on SQLite); `models.corrections` checks that the sale reversed exists. One reversal per sale.
    op.add_column("sale", sa.Column("reverses", sa.Integer(), nullable=True))
    op.add_column("sale", sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.create_index("ix_sale_reverses", "sale", ["reverses"], unique=True)
    op.create_table(
        "contestchange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("announced", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contestchange", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contestchange_contest_id"), ["contest_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contestchange", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contestchange_contest_id"))
    op.drop_table("contestchange")
    for table in ("standing", "contestresult"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("revenue_fen")
    with op.batch_alter_table("target") as batch_op:
        batch_op.drop_column("monthly")
    op.drop_index("ix_sale_reverses", table_name="sale")
    with op.batch_alter_table("sale") as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("reverses")
    with op.batch_alter_table("contest") as batch_op:
        for name in ("cancelled_by", "cancelled_at", "featured", "min_ratings"):
            batch_op.drop_column(name)
