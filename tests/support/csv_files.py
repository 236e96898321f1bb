"""Files for the importers, as an operator would hand them over: a partners CSV with every column, the sales
header, and `write` to put text in a file in some encoding (Excel on a Chinese Windows writes GB18030)."""

from __future__ import annotations

from pathlib import Path

PARTNERS = """code,name,team,region,city_tier,industry,size,joined_on,role,locale
P001,王强,华东一队,华东,1,建材,large,2024-01-10,captain,zh
P002,李娜,华东一队,华东,2,建材,small,2025-03-01,dealer,zh
P003,Zhang Wei,华南队,华南,3,家电,medium,2026-10-01,dealer,en
A001,赵经理,,,,,,,admin,
"""

SALES_HEADER = "id,partner,occurred_at,amount,units,margin,customer,satisfaction\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path
