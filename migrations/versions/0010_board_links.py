"""the meeting-room boards (issue 16): a contest's TV board at a URL with a revocable token

Also `ix_standing_team` and `ix_result_team` gain `position`: the console's standings filtered by a
team are counted and paged in rank order from the index alone (at 100,000 participants).

Revision ID: 0010_board_links
Revises: 0009_console_speed
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_board_links"
down_revision = "0009_console_speed"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "boardlink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", AutoString(length=64), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["partner.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("boardlink", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_boardlink_contest_id"), ["contest_id"], unique=False)
    for table, name in (("standing", "ix_standing_team"), ("contestresult", "ix_result_team")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, ["contest_id", "kind", "team_id", "position"], unique=False)


def downgrade() -> None:
    for table, name in (("standing", "ix_standing_team"), ("contestresult", "ix_result_team")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, ["contest_id", "kind", "team_id"], unique=False)
    with op.batch_alter_table("boardlink", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_boardlink_contest_id"))
    op.drop_table("boardlink")
