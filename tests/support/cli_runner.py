"""Run the real `mianzi` command line: in-process (`mianzi(...)`), or as a process of its own (`MIANZI`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from bot.cli import app

MIANZI = [sys.executable, "-c", "from bot.cli import main; main()"]  # `mianzi`, in this interpreter, for subprocess


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def mianzi(*args: str) -> Ran:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)
