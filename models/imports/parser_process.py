"""The forked process that parses a large file's sales while the importing process inserts them."""

from __future__ import annotations

import ctypes
import gc
import marshal
import multiprocessing
import os
import pickle
import signal
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any, Protocol

from models.errors import DataError
from models.imports.report import RowError

Chunk = tuple[list[int], list[Sequence[str] | None]]
Parsed = tuple[int, list[int], list[list[Any]], list[RowError]]
"""A chunk parsed: how many rows it had, the line numbers of its good ones, their sales as columns, its errors."""
CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


class Parser(Protocol):
    """What the forked process runs on each chunk (`_SqliteSales.parse`)."""

    def parse(self, lines: list[int], rows: list[Sequence[str] | None]) -> Parsed: ...


def forked(chunks: Iterator[Chunk], parser: Parser) -> Iterator[Parsed]:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_parse_in_child, args=(chunks, parser, send, receive, os.getpid()),
                            name="mianzi-sales-parser", daemon=True)
    _widen(receive)
    child.start()
    send.close()
    try:
        while True:
            try:
                kind, *body = marshal.loads(receive.recv_bytes())
            except EOFError as exc:
                raise RuntimeError("the sales parser process ended early") from exc
            if kind == "rows":
                count, lines, sales, errors = body
                yield count, lines, sales, pickle.loads(errors) if errors else []
            elif kind == "end":
                return
            elif kind == "data":
                raise DataError(body[0], **pickle.loads(body[1]))
            else:
                raise RuntimeError(f"the sales parser process failed: {body[0]}")
    finally:
        # Whatever ended the import (the end of the file, a bad row, an error here): the only
        # reading end closes, so a parser still sending gets EPIPE and ends by itself.
        receive.close()
        child.join(5)
        if child.is_alive():
            child.terminate()
            child.join()


PIPE_BYTES = 1 << 20
"""The pipe's buffer (Linux: `F_SETPIPE_SZ`, up to /proc/sys/fs/pipe-max-size, 1 MiB by default):
a parsed chunk (~0.8 MB of marshal data) fits whole, so the parser sends it and goes on with the
next while this process is still inserting the one before. With the default 64 KiB each send
waited for this process to read, and the two took turns more than they worked side by side."""


def _widen(conn: Any) -> None:
    with suppress(Exception):  # not Linux, or a smaller limit: the default buffer works too, slower
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_MARSHAL = 2  # the format of the rows sent (`_parse_in_child`)


def _die_with_parent(parent: int) -> None:
    """In the forked parser: end with the importing process, even when that one is killed outright.

    On Linux the kernel sends SIGKILL to this process when the thread that forked it ends (the
    importing thread, which lives until the import ends); elsewhere the EPIPE of the closed pipe
    ends it at its next send. The parent may have died before the request was made: then its
    pid is no longer our parent's.
    """
    with suppress(Exception):  # not Linux, or no libc to ask: the pipe is the only way
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _parse_in_child(chunks: Iterator[Chunk], parser: Parser,
                    send: Any, receive: Any, parent: int) -> None:
    """Runs in the forked process: parse every chunk and send it; never touches the database.

    It dies with the importing process (`_die_with_parent`), and closes its inherited copy of
    the pipe's reading end, so that a send with nobody left to read fails instead of blocking.
    The heap inherited from the importing process is frozen: otherwise every full collection
    walks it (measured: ~3 s per million rows). The rows travel as `marshal` data (plain
    strings, ints and None; a quarter of pickle's cost to write), the rare errors pickled.
    Marshal's format 2, without the back-references of the later ones: nothing here is worth
    sharing, and looking every object up to find that out was 40% of the writing (1,000,000 rows:
    0.28 s against 0.48 s; reading back the same)."""
    _die_with_parent(parent)
    receive.close()
    gc.freeze()
    try:
        for chunk in chunks:
            count, lines, sales, errors = parser.parse(*chunk)
            send.send_bytes(marshal.dumps(("rows", count, lines, sales, pickle.dumps(errors) if errors else b""),
                                          _MARSHAL))
        send.send_bytes(marshal.dumps(("end",)))
    except BrokenPipeError:
        pass  # the importing process stopped reading (it failed); nothing to tell it
    except DataError as exc:
        send.send_bytes(marshal.dumps(("data", exc.key, pickle.dumps(exc.params))))
    except BaseException as exc:  # noqa: BLE001 - reported to the importing process
        send.send_bytes(marshal.dumps(("crash", repr(exc))))
    finally:
        send.close()
