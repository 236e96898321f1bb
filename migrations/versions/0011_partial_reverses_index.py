"""`ix_sale_reverses` holds only the sales that reverse another (a partial unique index)

A plain sale has no `reverses`; the full index had an entry for every sale, which a large import
paid for (built again over 1,000,000 rows: ~0.4 s, or a descent of its tree per row kept). Every
query on the column names a value (`reverses = …`, `IN (…)`, `IS NOT NULL`), which the partial
index serves; uniqueness is the same (NULLs were never unique).

Revision ID: 0011_partial_reverses_index
Revises: 0010_board_links
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_partial_reverses_index"
down_revision = "0010_board_links"
branch_labels = None
depends_on = None

_ONLY_REVERSALS = sa.text("reverses IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_sale_reverses", table_name="sale")
    op.create_index("ix_sale_reverses", "sale", ["reverses"], unique=True,
                    sqlite_where=_ONLY_REVERSALS, postgresql_where=_ONLY_REVERSALS)


def downgrade() -> None:
    op.drop_index("ix_sale_reverses", table_name="sale")
    op.create_index("ix_sale_reverses", "sale", ["reverses"], unique=True)
