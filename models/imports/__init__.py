"""Validation and import of partners, targets and sales (CLI files and the HTTP API alike).

A batch with any invalid row imports nothing: every bad row is reported with its line number and
a reason key (rendered by `messages`). Re-importing the same data changes nothing; a sale id that
was imported before with other content is an error (the sales ledger is append-only).

- `records`: rows in (CSV rows, JSON records); `report`: what an import says back;
  `cells`: the checks of one value;
- `partners`, `targets`, `sales`: one module per file, each with its columns;
- `sale_rows`: one sale row checked, the careful path every other path falls back on;
- `sqlite_sales`: the SQLite bulk loader, with `sale_columns` (whole columns checked at once) and
  `parser_process` (the forked parser of a large file).
"""
