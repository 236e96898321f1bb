"""the console dashboard's indexes (issue 15): the last import, the last day's pushes, the month's points

Revision ID: 0008_dash_dashboard_indexes
Revises: 0007_console

- `ix_sale_imported_at`: the newest `imported_at` and how many sales carry it (the last import)
  by the index instead of reading the whole ledger (0.6 s at 1,000,000 sales).
- `ix_outbox_created`: the pushes queued since a moment, counted by channel and status from the
  index alone, whatever the size of the outbox's history.
- `ix_pointsentry_created`: this month's points movements by kind, from the index alone.
- `ix_partner_region`: the partners by region, with the active ones and those taking part, from
  the index alone (no sort of the table).
- `ix_chatidentity_bound`: each partner's active chat platforms, from the index alone.
"""
from alembic import op

revision = "0008_dash_dashboard_indexes"
down_revision = "0007_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sale_imported_at", "sale", ["imported_at"])
    op.create_index("ix_outbox_created", "outbox", ["created_at", "platform", "status"])
    op.create_index("ix_pointsentry_created", "pointsentry", ["created_at", "kind", "amount"])
    op.create_index("ix_partner_region", "partner", ["region", "active", "role"])
    op.create_index("ix_chatidentity_bound", "chatidentity", ["partner_id", "active", "platform"])


def downgrade() -> None:
    op.drop_index("ix_chatidentity_bound", table_name="chatidentity")
    op.drop_index("ix_partner_region", table_name="partner")
    op.drop_index("ix_pointsentry_created", table_name="pointsentry")
    op.drop_index("ix_outbox_created", table_name="outbox")
    op.drop_index("ix_sale_imported_at", table_name="sale")
