"""Uploaded files kept for a while: the console's import page previews a file, then commits the same bytes.

A file is kept as `<media_dir>/uploads/<sha256 hex>`, its id the hex digest: the same bytes are
the same upload (saving them again keeps one copy and renews it). Uploads older than `KEEP` are
removed whenever a file is saved. An id is 64 hexadecimal characters, nothing else: it names a
file and must never name a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from models.errors import DataError

KEEP_SECONDS = 24 * 3600
_ID = re.compile(r"[0-9a-f]{64}")


def uploads_dir(media_dir: str | Path) -> Path:
    return Path(media_dir) / "uploads"


def upload_path(media_dir: str | Path, upload_id: str) -> Path:
    """Where upload `upload_id` is kept; `DataError("error.upload_unknown")` for an id that is not
    64 hexadecimal characters (upper case is read as lower case)."""
    if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id.lower()):
        raise DataError("error.upload_unknown")
    return uploads_dir(media_dir) / upload_id.lower()


def save_upload(media_dir: str | Path, data: bytes, *, now: float | None = None) -> str:
    """Keep `data`; its upload id (the sha256 hex digest). Written whole or not at all (a temporary
    file renamed); uploads older than a day are removed first."""
    now = time.time() if now is None else now
    folder = uploads_dir(media_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_old(folder, now)
    upload_id = hashlib.sha256(data).hexdigest()
    path = folder / upload_id
    if path.is_file() and path.stat().st_size == len(data):
        os.utime(path, (now, now))
        return upload_id
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.utime(temporary, (now, now))
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return upload_id


def open_upload(media_dir: str | Path, upload_id: str) -> BinaryIO:
    """The upload's bytes as a binary file (the caller closes it); `DataError("error.upload_unknown")`
    for a bad id or an upload that is not (or no longer) kept."""
    path = upload_path(media_dir, upload_id)
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise DataError("error.upload_unknown") from exc


def upload_exists(media_dir: str | Path, upload_id: str) -> bool:
    return upload_path(media_dir, upload_id).is_file()


def _remove_old(folder: Path, now: float) -> None:
    for entry in folder.iterdir():
        with suppress(OSError):  # removed meanwhile by another process: fine
            if entry.is_file() and entry.stat().st_mtime < now - KEEP_SECONDS:
                entry.unlink()
