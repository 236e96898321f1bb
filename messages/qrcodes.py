"""QR codes and invite posters (`mianzi partners invite --posters DIR`).

A QR code is made by segno (error correction M, the best of the eight masks, a 4-module quiet
zone) and drawn with whole pixels per module, so it scans from a sheet, a screen or paper. A
poster is an A5 page at 300 dpi: the partner's name and team, the Telegram code and (when the
Official Account is set up) the WeChat code side by side with their labels, the invite code,
its expiry and a line of instructions, every word from `messages/<locale>/strings.toml`. With no
CJK font there is no poster: `find_cjk_font` (messages/images.py) is asked first, never boxes.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from messages.render import t
from models.values import visible

QUIET = 4  # modules of white around a code, as the standard asks
A5_300DPI = (1748, 2480)
INK, PAPER, RED, GREY = (30, 30, 30), (255, 255, 255), (178, 34, 34), (110, 110, 110)


def qr_image(data: str, width: int) -> Image.Image:
    """A black-on-white QR code of `data`, with its quiet zone, at most `width` pixels wide (whole
    pixels per module, at least one)."""
    import segno

    matrix = segno.make_qr(data, error="m").matrix
    n = len(matrix)
    code = Image.frombytes("L", (n, n), bytes(0 if dark else 255 for row in matrix for dark in row))
    framed = Image.new("L", (n + 2 * QUIET, n + 2 * QUIET), 255)
    framed.paste(code, (QUIET, QUIET))
    scale = max(1, width // framed.width)
    return framed.resize((framed.width * scale, framed.height * scale), Image.Resampling.NEAREST)


def qr_png(data: str, width: int = 240) -> bytes:
    """`qr_image` as PNG bytes (one bit per pixel: a few hundred bytes)."""
    buffer = io.BytesIO()
    qr_image(data, width).convert("1").save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _fit(png: bytes, width: int) -> Image.Image:
    """A downloaded QR code (WeChat's PNG) scaled to `width` without blurring its modules."""
    image = Image.open(io.BytesIO(png)).convert("L")
    return image.resize((width, width * image.height // image.width), Image.Resampling.NEAREST)


def _text(draw: ImageDraw.ImageDraw, center_x: int, y: int, text: str, font: ImageFont.FreeTypeFont,
          fill: tuple[int, int, int]) -> int:
    """`text` centred on `center_x` at `y`; returns the y below it."""
    text = visible(text)
    box = draw.textbbox((0, 0), text, font=font)
    draw.text((center_x - (box[2] - box[0]) // 2, y), text, font=font, fill=fill)
    return int(y + (box[3] - box[1]) + font.size // 2)  # ints at runtime (font(n), its box), floats in the stubs


def poster(out: Path, font_path: str, locale: str, *, name: str, team: str | None, invite: str, expires: str,
           telegram_link: str, wechat_png: bytes | None) -> Path:
    """One printable invite: A5 portrait at 300 dpi (1748 × 2480 px), PNG with its dpi recorded."""
    width, height = A5_300DPI
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)

    def font(size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(font_path, size)

    draw.rectangle((0, 0, width, 300), fill=RED)
    _text(draw, width // 2, 90, t("onboard.poster_title", locale), font(96), PAPER)
    y = _text(draw, width // 2, 400, name, font(120), INK)
    if team:
        y = _text(draw, width // 2, y + 10, t("onboard.poster_team", locale, team=team), font(64), GREY)
    codes = [(t("onboard.poster_wechat", locale), _fit(wechat_png, 720))] if wechat_png else []
    codes.append((t("onboard.poster_telegram", locale), qr_image(telegram_link, 720).convert("RGB")))
    top = max(y + 60, 820)
    slot = width // len(codes)
    for i, (label, code) in enumerate(codes):
        side = min(code.width, slot - 60)
        if code.width > side:
            code = code.resize((side, side * code.height // code.width), Image.Resampling.NEAREST)
        center = slot * i + slot // 2
        image.paste(code, (center - code.width // 2, top))
        _text(draw, center, top + code.height + 30, label, font(60), INK)
    y = top + 720 + 180
    y = _text(draw, width // 2, y, t("onboard.poster_steps", locale, wechat=bool(wechat_png)), font(52), INK)
    y = _text(draw, width // 2, y + 30, t("onboard.poster_code", locale, code=invite), font(72), RED)
    _text(draw, width // 2, y + 10, t("onboard.poster_expires", locale, expires=expires), font(48), GREY)
    _text(draw, width // 2, height - 140, t("image.signature", locale), font(44), GREY)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, "PNG", dpi=(300, 300))
    return out
