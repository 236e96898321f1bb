"""Recognition images (面子 you can forward): the champion's certificate and the top-N board.

Chinese needs a real CJK font. It is looked up in this order: the `font` argument (the
`MIANZI_CJK_FONT` setting), then common system locations (Debian's `fonts-noto-cjk`,
`fonts-wqy-zenhei`, …). A font is only accepted if it really has the glyphs: with none found,
`find_cjk_font` returns None and the caller sends the text post alone — never boxes instead of words.
"""

from __future__ import annotations

import glob
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFont

from messages.render import score_text, t
from models.values import visible

log = logging.getLogger("mianzi.images")

CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
GOLD, INK, PAPER, RED = (184, 134, 11), (40, 30, 20), (255, 250, 238), (178, 34, 34)


def has_cjk(path: str) -> bool:
    """Does this font draw 冠 as a real glyph (not the same shape as an unassigned code point)?"""
    try:
        font = ImageFont.truetype(path, 48)
    except OSError:
        return False
    real, missing = font.getmask("冠"), font.getmask("\ue000")
    if real.size == (0, 0):
        return False
    a = Image.frombytes("L", real.size, bytes(real))
    if real.size != missing.size:
        return True
    b = Image.frombytes("L", missing.size, bytes(missing))
    return ImageChops.difference(a, b).getbbox() is not None


@lru_cache(maxsize=8)
def find_cjk_font(configured: str | None = None) -> str | None:
    paths = [configured] if configured else []
    paths += list(CANDIDATES) + sorted(glob.glob("/usr/share/fonts/**/*CJK*", recursive=True))
    for path in paths:
        if path and Path(path).is_file() and has_cjk(path):
            return path
    if configured:
        log.warning("MIANZI_CJK_FONT=%s has no Chinese glyphs or cannot be read", configured)
    log.warning("no CJK font found (install fonts-noto-cjk or set MIANZI_CJK_FONT): images are skipped")
    return None


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font: ImageFont.FreeTypeFont, fill: tuple[int, int, int],
              width: int) -> None:
    text = visible(text)
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (box[2] - box[0])) // 2, y), text, font=font, fill=fill)


def certificate(out: Path, font_path: str, locale: str, name: str, title: str, contest: str, period: str,
                detail: str) -> Path:
    """An honour certificate: 1200×850, the partner's name large, the title they won, the period."""
    width, height = 1200, 850
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((24, 24, width - 24, height - 24), outline=GOLD, width=10)
    draw.rectangle((48, 48, width - 48, height - 48), outline=RED, width=3)
    _centered(draw, 100, t("image.certificate", locale), _font(font_path, 84), RED, width)
    _centered(draw, 260, name, _font(font_path, 96), INK, width)
    _centered(draw, 420, t("image.awarded", locale, title=title), _font(font_path, 52), GOLD, width)
    _centered(draw, 520, contest, _font(font_path, 40), INK, width)
    _centered(draw, 580, period, _font(font_path, 34), INK, width)
    _centered(draw, 660, detail, _font(font_path, 34), INK, width)
    _centered(draw, 740, t("image.signature", locale), _font(font_path, 30), RED, width)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, "PNG")
    return out


def board(out: Path, font_path: str, locale: str, contest: dict[str, Any], top: list[dict[str, Any]],
          period: str) -> Path:
    """The public top-N board: one row per name, medals for the top 3. Only the public lines."""
    width, row = 1000, 78
    height = 220 + row * max(len(top), 1) + 60
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 150), fill=RED)
    _centered(draw, 28, contest["name"], _font(font_path, 52), PAPER, width)
    _centered(draw, 96, period, _font(font_path, 30), PAPER, width)
    body, small = _font(font_path, 40), _font(font_path, 34)
    y = 190
    for line in top:
        rank = line["rank"]
        mark = str(rank)
        color = GOLD if rank <= 3 else INK
        draw.ellipse((60, y + 4, 124, y + 68), outline=color, width=4)
        _centered_in(draw, (60, 124), y + 12, mark, small, color)
        draw.text((160, y + 10), visible(line["name"]), font=body, fill=INK)
        score = score_text(line["score"], contest["metric"], locale)
        box = draw.textbbox((0, 0), score, font=body)
        draw.text((width - 60 - (box[2] - box[0]), y + 10), score, font=body, fill=INK)
        y += row
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, "PNG")
    return out


def _centered_in(draw: ImageDraw.ImageDraw, span: tuple[int, int], y: int, text: str,
                 font: ImageFont.FreeTypeFont, fill: tuple[int, int, int]) -> None:
    box = draw.textbbox((0, 0), text, font=font)
    draw.text((span[0] + (span[1] - span[0] - (box[2] - box[0])) // 2, y), text, font=font, fill=fill)
