"""score indexes for the next place above a partner

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_standing_score", "standing", ["contest_id", "kind", "score", "position"])
    op.create_index("ix_result_score", "contestresult", ["contest_id", "kind", "score", "position"])


def downgrade() -> None:
    op.drop_index("ix_result_score", table_name="contestresult")
    op.drop_index("ix_standing_score", table_name="standing")
