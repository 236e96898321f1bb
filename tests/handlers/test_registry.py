"""The one command table (`handlers.registry`) and what dispatch does with it, checked on the reply data.

Every declared command is reached by its slash name and its Chinese keyword; dispatch answers the
unbound with `chat.need_bind` and anyone but an admin with `chat.admin_only` before a handler runs,
and turns a handler's `DataError` into its message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

import messages.locales
from handlers import registry
from handlers.dispatch import dispatch
from handlers.identity import Asker
from handlers.parse import command_name, parse
from handlers.types import PRIVATE, PUBLIC, ChatConfig, Incoming, Reply
from models.db import session_scope
from models.errors import DataError
from models.points import MAX_ADJUST
from models.tables import Team, TeamChat
from tests.support.console import CONFIG, NOW, bound
from tests.support.incentives import program

ZH = messages.locales.HERE / "zh" / "keywords.toml"


def say(key: str, locale: str = "zh", **params: object) -> Reply:
    return Reply("say", {"key": key, "params": params}, locale)


def ask(engine: Engine, user: str, text: str, *, group: str | None = None, config: ChatConfig = CONFIG) -> list[Reply]:
    """The replies as data, in one committed transaction (as the adapters run it)."""
    incoming = Incoming(platform="console", user_ref=user, chat_ref=group or user, text=text, is_group=group is not None)
    with session_scope(engine) as s:
        return dispatch(s, incoming, config, NOW)


@pytest.fixture
def users(engine: Engine) -> dict[str, str]:
    """A bound dealer (P1, Chinese) and a bound admin (BOSS, English); "stranger" is not bound."""
    program(engine)
    return {"dealer": bound(engine, "P1"), "admin": bound(engine, "BOSS")}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, list[str]]]]:
    """Every handler replaced by one that records (command, args) and answers nothing."""
    seen: list[tuple[str, list[str]]] = []
    for name, spec in list(registry.table().items()):

        def record(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime,
                   name: str = name) -> list[Reply]:
            seen.append((name, args))
            return []

        monkeypatch.setitem(registry.table(), name, dataclasses.replace(spec, handler=record))
    yield seen


def zh_keywords() -> dict[str, list[str]]:
    import tomllib

    with ZH.open("rb") as f:
        return tomllib.load(f)


# --- the table --------------------------------------------------------------------------------


def test_every_command_is_declared_once_with_its_handler_module() -> None:
    table = registry.table()
    assert set(table) == {"bind", "help", "lang", "rank", "team", "me", "contests", "honors", "linkgroup",
                          "broadcast", "confirm", "cancel", "deliveries", "rewards", "redeem", "approve", "reject",
                          "adjust", "training", "join", "checkin", "feedback", "console"}
    assert registry.slash_names()["start"] == "bind"
    admins = {n for n, spec in table.items() if spec.roles == registry.ADMINS}
    assert admins == {"linkgroup", "broadcast", "confirm", "cancel", "deliveries", "approve", "reject", "adjust",
                      "console"}
    assert {n for n, spec in table.items() if not spec.needs_partner} == {"bind", "help", "lang", "feedback"}
    assert {n: spec.text_after for n, spec in table.items() if spec.text_after is not None} == {
        "broadcast": 0, "adjust": 2, "reject": 1}


def test_a_name_or_alias_declared_twice_is_refused() -> None:
    def handler(*args: object) -> list[Reply]:
        return []

    with pytest.raises(ValueError, match="declared twice"):
        registry.command("begin", aliases=("start",))(handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="declared twice"):
        registry.command("start")(handler)  # type: ignore[arg-type]
    assert "begin" not in registry.table() and "start" not in registry.table()


def test_the_keyword_map_is_read_from_the_messages_of_every_locale() -> None:
    expected = {word: name for name, words in zh_keywords().items() for word in words}
    assert messages.locales.keywords() == expected
    assert expected["排行"] == expected["排名"] == "rank" and expected["菜单"] == "help"
    assert set(expected.values()) <= set(registry.table())  # every word names a declared command
    words = list(expected)
    assert not [(a, b) for a in words for b in words if a != b and a.startswith(b)]  # matching order is moot


def test_a_word_naming_two_commands_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for locale, body in (("zh", 'rank = ["排行"]\n'), ("en", 'rank = ["top"]\nteam = ["ＴＯＰ"]\n')):
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "keywords.toml").write_text(body, encoding="utf-8")
    monkeypatch.setattr(messages.locales, "HERE", tmp_path)
    messages.locales.keywords.cache_clear()
    try:
        with pytest.raises(ValueError, match="names both 'rank' and 'team'"):
            messages.locales.keywords()
    finally:
        monkeypatch.undo()
        messages.locales.keywords.cache_clear()
    assert messages.locales.keywords()["排行"] == "rank"


def test_every_command_is_reached_by_its_slash_name_and_its_zh_keyword(engine: Engine, users: dict,
                                                                        calls: list) -> None:
    keywords = zh_keywords()
    assert set(registry.table()) - set(keywords) == {"feedback"}  # answered by a digit, or a button
    for name in registry.table():
        for text in (f"/{name} x1", *(f"{word} x1" for word in keywords.get(name, []))):
            calls.clear()
            assert ask(engine, users["admin"], text) == []
            assert calls == [(name, ["x1"])], text
    calls.clear()
    ask(engine, users["admin"], "/START@MianziBot abc")
    ask(engine, users["admin"], "4分")
    ask(engine, users["admin"], "fb:7:5")
    assert calls == [("bind", ["abc"]), ("feedback", ["4分"]), ("feedback", ["7", "5"])]


def test_training_takes_join_and_checkin_by_name_or_keyword(engine: Engine, users: dict) -> None:
    assert command_name("报名") == command_name("join") == "join"
    assert command_name("签到") == command_name("ＣＨＥＣＫＩＮ") == "checkin"
    assert command_name("hello") is None
    dealer = users["dealer"]
    assert ask(engine, dealer, "/training 报名 3") == ask(engine, dealer, "报名 3") == [
        say("training.not_found", id="3")]
    assert ask(engine, dealer, "培训 checkin") == ask(engine, dealer, "/checkin") == [say("training.checkin_usage")]
    assert ask(engine, dealer, "培训 join") == [say("training.join_usage")]


# --- dispatch: who may run it ----------------------------------------------------------------


def test_the_unbound_are_asked_to_bind_before_any_command_that_needs_a_partner(engine: Engine, users: dict,
                                                                                calls: list) -> None:
    for name, spec in registry.table().items():
        calls.clear()
        replies = ask(engine, "stranger", f"/{name}")
        if spec.needs_partner:
            assert replies == [say("chat.need_bind")], name
            assert calls == []
        else:
            assert calls == [(name, [])], name


def test_admin_commands_refuse_everyone_else_in_one_reply(engine: Engine, users: dict, calls: list) -> None:
    admin_only = [n for n, spec in registry.table().items() if spec.roles == registry.ADMINS]
    for name in admin_only:
        assert ask(engine, users["dealer"], f"/{name} 1 2 3") == [say("chat.admin_only")], name
    assert calls == []
    for name in admin_only:
        ask(engine, users["admin"], f"/{name} 1 2 3")
    assert [name for name, _ in calls] == admin_only


def test_a_refusal_in_a_group_goes_privately(engine: Engine, users: dict) -> None:
    assert ask(engine, users["dealer"], "/broadcast 大家好", group="g1") == [
        dataclasses.replace(say("chat.admin_only"), audience=PRIVATE)]


# --- dispatch: a DataError is the reply ---------------------------------------------------------


def test_a_data_error_from_any_handler_becomes_its_message(engine: Engine, users: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
        raise DataError("rewards.unknown_sku", value=args[0])

    monkeypatch.setitem(registry.table(), "me", dataclasses.replace(registry.table()["me"], handler=broken))
    assert ask(engine, users["dealer"], "我的 XYZ") == [say("rewards.unknown_sku", value="XYZ")]


def test_the_data_errors_of_the_store_broadcasts_and_points_are_replies(engine: Engine, users: dict) -> None:
    dealer, admin = users["dealer"], users["admin"]
    assert ask(engine, dealer, "兑换 NOPE") == [say("rewards.unknown_sku", value="NOPE")]
    assert ask(engine, dealer, "兑换 PEN") == [say("rewards.out_of_stock", sku="PEN")]
    assert ask(engine, admin, "/approve 99999999999") == [say("rewards.no_such_redemption", "en", id="99999999999")]
    assert ask(engine, admin, "/approve 12") == [say("rewards.no_such_redemption", "en", id=12)]
    assert ask(engine, admin, "群发") == [say("broadcast.empty", "en")]
    keys = "region, city_tier, industry, size, team, role, platform"  # a broadcast may keep to one app
    assert ask(engine, admin, "/broadcast colour=red 你好") == [
        say("error.bad_segment", "en", value="colour=red", keys=keys)]
    assert ask(engine, admin, "/confirm 4242") == [say("broadcast.not_found", "en", id=4242)]
    assert ask(engine, admin, "/adjust P1 lots 原因") == [say("ledger.bad_amount", "en", value="lots", max=MAX_ADJUST)]


# --- replies as data ----------------------------------------------------------------------------


def test_help_lang_and_linkgroup_answer_with_their_data(engine: Engine, users: dict) -> None:
    assert ask(engine, users["dealer"], "帮助") == [
        Reply("help", {"role": "dealer", "bound": True, "name": "经销商1"}, "zh", audience=PUBLIC)]
    assert ask(engine, "stranger", "/help") == [
        Reply("help", {"role": "guest", "bound": False, "name": None}, "zh", audience=PUBLIC)]
    assert ask(engine, users["dealer"], "语言en") == [say("chat.lang_set", "en")]
    assert ask(engine, users["dealer"], "/lang fr") == [say("chat.lang_usage", "en")]
    admin = users["admin"]
    assert ask(engine, admin, "/linkgroup EAST") == [say("chat.linkgroup_in_group", "en")]
    assert ask(engine, admin, "关联群 NOWHERE", group="g1") == [
        dataclasses.replace(say("chat.no_such_team", "en", value="NOWHERE"), audience=PRIVATE)]
    assert ask(engine, admin, "关联群 EAST", group="g1") == [
        dataclasses.replace(say("chat.group_linked", "en", team="EAST"), audience=PUBLIC)]
    assert ask(engine, admin, "关联群 WEST", group="g1")[0].context["params"] == {"team": "WEST"}
    with Session(engine) as s:
        linked = s.execute(select(Team.code).join(TeamChat, TeamChat.team_id == Team.id)
                           .where(TeamChat.chat_ref == "g1")).scalars().all()
    assert linked == ["WEST"]  # a group moved to another team is linked once


def test_an_admin_without_a_team_gets_the_team_list(engine: Engine, users: dict) -> None:
    assert ask(engine, users["admin"], "团队") == [
        Reply("teams", {"teams": [{"code": "EAST", "name": "EAST", "size": 2},
                                  {"code": "WEST", "name": "WEST", "size": 1}]}, "en")]
    assert ask(engine, users["admin"], "/team MARS") == [say("chat.no_such_team", "en", value="MARS")]


def test_parse_keeps_the_text_after_as_declared() -> None:
    assert parse("群发大家好，明天（周四）见！").args == ["大家好，明天（周四）见！"]
    assert parse("/adjust P1 -50 重复　发放").args == ["P1", "-50", "重复　发放"]
    assert parse("驳回 12 库存　不足").args == ["12", "库存　不足"]
    assert parse("绑定AB12CD34").args == ["AB12CD34"]
    assert parse("排行AB").name == ""  # only the declared `glued` keywords take a joined argument
