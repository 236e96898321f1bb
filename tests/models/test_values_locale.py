"""A language as people name it: one table for the partners file and the chat's `语言` command."""

from __future__ import annotations

import pytest

from models.values import LOCALES, locale_word


@pytest.mark.parametrize(("typed", "code"), [("中文", "zh"), ("英文", "en"), (" English ", "en"), ("chinese", "zh"),
                                             ("ZH", "zh"), ("en", "en")])
def test_language_words_name_a_locale(typed: str, code: str) -> None:
    assert locale_word(typed) == code and code in LOCALES


def test_an_unknown_language_is_left_to_be_refused() -> None:
    assert locale_word("日文") not in LOCALES and locale_word("FR") == "fr"
