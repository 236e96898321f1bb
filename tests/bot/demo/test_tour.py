"""`mianzi demo` without a terminal plays its scripted tour and exits 0 (as in CI or a pipe)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot.demo.tour import _answer, prepare
from tests.support.cli_runner import MIANZI


def test_demo_tour_without_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIANZI_")}
    ran = subprocess.run([*MIANZI, "demo"], cwd=tmp_path,
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert "绑定成功" not in out  # binding happens before the tour
    for expected in ("[经销商] > 排行", "🥇", "您：第", "成员的个人",
                     "荣誉榜", "同分规则", "时间快进到", "结果揭晓", "仅您可见", "演示结束"):
        assert expected in out, expected
    assert "Traceback" not in out + ran.stderr
    assert (tmp_path / "mianzi-demo.db").exists()


def test_tick_is_for_the_channel_manager(tmp_path: Path) -> None:
    demo = prepare(tmp_path / "d.db", "Asia/Shanghai", "zh")
    assert "先输入 /as admin" in _answer(demo, "dealer", "/tick 3d")
    assert "用法" in _answer(demo, "admin", "/tick soon")
    before = demo.now
    assert "时间快进到" in _answer(demo, "admin", "/tick 12h")
    assert (demo.now - before).total_seconds() == 12 * 3600
    from bot import context

    context.dispose_all()
