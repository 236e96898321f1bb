"""Every phrase and template exists in Chinese and English; numbers read the local way."""

from __future__ import annotations

from messages import render


def test_string_tables_have_the_same_keys() -> None:
    assert set(render.strings("zh")) == set(render.strings("en"))


def test_templates_exist_in_both_languages() -> None:
    zh = {p.name for p in (render.HERE / "zh").glob("*.j2")}
    en = {p.name for p in (render.HERE / "en").glob("*.j2")}
    assert zh == en


def test_money_and_scores() -> None:
    assert render.money(1234550, "en") == "¥12,345.50"
    assert render.money(1234550, "zh") == "¥12,345.50"
    assert render.money(123456789, "zh") == "¥1,234,567.89"  # one rule: no 万 beside full amounts
    assert render.money(123456789, "en") == "¥1,234,567.89"
    assert render.score_text(12345, "attainment") == "123.5%"
    assert render.score_text(450, "satisfaction") == "4.50"
    assert render.score_text(120000, "units") == "1,200"
    assert render.medal(1) == "🥇" and render.medal(4) == "4."


def test_reasons_render_in_both_languages() -> None:
    reason = {"code": "not_eligible.tenure", "days": 90, "tenure": 17, "joined_on": "2026-10-15"}
    assert render.reason_text(reason, "revenue", "zh") == "加入未满 90 天（比赛开始时 17 天）"
    assert render.reason_text(reason, "revenue", "en") == "joined less than 90 days before the start (17 days)"
    low = {"code": "not_eligible.min_satisfaction", "min": 400, "value": 350}
    assert render.reason_text(low, "revenue", "zh") == "客户满意度 3.50 低于要求的 4.00"


def test_help_lists_one_command_a_line_for_every_role() -> None:
    for locale in ("zh", "en"):
        for role in ("dealer", "captain", "admin"):
            text = render.render("help", locale, role=role, bound=True, name="王强")
            items = [line for line in text.splitlines() if line.startswith("·")]
            assert len(items) == 8, (locale, role, text)
            assert all(line.count("·") == 1 for line in items), (locale, role, text)
