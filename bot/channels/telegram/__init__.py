"""Telegram: the webhook/polling adapter, pushes, and PTB's HTTP layer on aiohttp."""
