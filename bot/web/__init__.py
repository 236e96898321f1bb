"""The ASGI app of `mianzi serve`: routes, health, the sales API, and what runs beside them."""
