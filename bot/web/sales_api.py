"""`POST /api/sales`: the sales ledger fed over HTTP, with the same rules as `mianzi sales import`.

A JSON array of records with the CSV's fields. Any bad record rejects the whole batch (422, every
bad record listed, nothing stored); records already imported with the same content are skipped,
so a client may simply re-send a batch after a timeout.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import context
from bot.settings import Settings
from bot.web.body import Rejected, read_body
from bot.web.health import write_failure
from handlers.refresh import refresh_dirty
from messages.render import t
from models.db import session_scope
from models.errors import DataError
from models.imports.records import rows_from_records
from models.imports.report import ImportRejected, ImportReport
from models.imports.sale_rows import SALE_FILE_COLUMNS
from models.imports.sales import import_sales
from models.values import zone

log = logging.getLogger("mianzi.api")

MAX_RECORDS = 50_000
MAX_BODY_BYTES = 64 << 20  # far above 50,000 honest records, far below what would hurt the server


@dataclass(frozen=True)
class Result:
    status: int
    body: dict[str, Any]


def bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not numbers a ledger can hold


def parse_records(body: bytes) -> list[Any] | None:
    """The JSON array, or None. Decimals stay exact (`12.50` is not a float)."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, list) else None


class SalesApi:
    def __init__(self, settings: Settings) -> None:
        if not settings.api_token:
            raise ValueError("the API is off: MIANZI_API_TOKEN is not set")
        self.settings = settings
        self.token = settings.api_token

    async def post_sales(self, request: Request) -> Response:
        loc = self.settings.locale
        if not bearer_ok(request, self.token):
            return JSONResponse({"error": t("web.unauthorized", loc)}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except Rejected as exc:
            log.warning("sales API: request refused with %s: %s", exc.status, exc.reason)
            too_large = exc.status == 413
            error = t("web.body_too_large", loc, max=MAX_BODY_BYTES >> 20) if too_large else t("error.bad_json", loc)
            return JSONResponse({"error": error}, status_code=exc.status)
        result = await asyncio.to_thread(self.import_body, body)
        return JSONResponse(result.body, status_code=result.status)

    def import_body(self, body: bytes) -> Result:
        """Parse and import in a worker thread (both can take seconds for 50,000 records)."""
        loc = self.settings.locale
        records = parse_records(body)
        if records is None:
            return Result(400, {"error": t("error.bad_json", loc)})
        if len(records) > MAX_RECORDS:
            return Result(413, {"error": t("error.file_too_large", loc, max=MAX_RECORDS)})
        try:
            report = self._import_retrying(records)
        except ImportRejected as rejected:
            return Result(422, {"error": t(rejected.key, loc, **rejected.params),
                                "errors": [{"record": e.line, "code": e.key, "reason": t(e.key, loc, **e.params)}
                                           for e in rejected.errors]})
        except DataError as exc:
            return Result(422, {"error": t(exc.key, loc, **exc.params)})
        except Exception as exc:  # the ORM's errors, and the bulk path's own driver calls
            reason = write_failure(exc)
            if reason is not None:  # read-only, full, locked too long: the client may try again later
                log.warning("sales import refused, the database cannot be written (%s): %s", reason, exc)
                return Result(503, {"error": t("web.database_unwritable", loc), "reason": reason})
            log.exception("sales import failed")
            return Result(500, {"error": t("web.internal_error", loc)})
        return Result(200, {"rows": report.rows, "inserted": report.inserted, "unchanged": report.unchanged})

    def _import_retrying(self, records: list[Any]) -> ImportReport:
        """Import once; if a concurrent request inserted the same new ids first, once more.

        The second run sees those ids as already imported: unchanged if equal, 422 if not.
        """
        try:
            return self._import(records)
        except IntegrityError:
            log.info("concurrent import of the same sale ids: retrying once")
            return self._import(records)

    def _import(self, records: list[Any]) -> ImportReport:
        with session_scope(context.engine(self.settings)) as session:
            report = import_sales(session, rows_from_records(records, SALE_FILE_COLUMNS), zone(self.settings.timezone))
            if report.inserted:
                refresh_dirty(session)
            return report
