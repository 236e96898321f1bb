"""The admin web console at /admin/ (issue 15). So far only its static files: htmx and ECharts,
vendored with their licences in static/ (no CDN: the console must work on a closed network). The
sign-in links and sessions it will use are in models/web_sessions.py and bot/web/session.py; no page
is served yet."""
