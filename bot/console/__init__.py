"""The admin web console at /admin/ (issue 15): its static files (htmx, ECharts, vendored with their
licences) are in static/; the pages are still to come (see the branch's report)."""
