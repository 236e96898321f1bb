"""The outbox's delivery worker and the rate ceilings it enforces."""
