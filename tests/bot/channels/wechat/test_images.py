"""Recognition images to the Official Account and WeCom against the fake API on 127.0.0.1: a temporary media
upload (multipart field `media`), then an image message with its `media_id`, then the caption as a text; the
Official Account's window applies to images too, and no template can carry one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.channels.base import OutboxItem
from bot.channels.wechat.push import WeChatPush, WeComPush
from tests.support.fake_wechat import FakeWeixin, weixin_api
from tests.support.wechat_push import OPENID, TEMPLATE, identity, pushes, run, settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    yield from weixin_api(monkeypatch)


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "contest-7-certificate-1.png"
    path.write_bytes(PNG)
    return path


def image_item(image: Path | str, identity_id: int | None = None, chat_ref: str = OPENID, platform: str = "wechat",
               is_group: bool = False, caption: str = "🏅 恭喜获得本月冠军") -> OutboxItem:
    payload: dict[str, Any] = {"image": str(image), "caption": caption}
    return OutboxItem(id=1, platform=platform, chat_ref=chat_ref, is_group=is_group, payload=payload,
                      identity_id=identity_id, partner_id=None, attempts=0)


def assert_upload(fake: FakeWeixin, png: Path) -> None:
    (upload,) = fake.uploads()
    assert upload.body == {"type": "image", "field": "media", "filename": png.name, "content_type": "image/png",
                           "data": PNG}
    assert upload.token == "TOKEN-1"


# ---- Official Account ---------------------------------------------------------------------------------------


def test_oa_image_inside_the_window(db_url: str, engine: Engine, fake: FakeWeixin, png: Path) -> None:
    iid = identity(engine, seen_hours_ago=2)
    results = run(WeChatPush(settings(db_url, fake), engine), image_item(png, iid), image_item(png, iid))
    assert [(r.outcome, r.error) for r in results] == [("sent", None)] * 2
    assert_upload(fake, png)  # one upload: the same bytes reuse the media id
    assert [c.body for c in fake.sent("message/custom/send")] == [
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": "MEDIA-1"}},
        {"touser": OPENID, "msgtype": "text", "text": {"content": "🏅 恭喜获得本月冠军"}},
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": "MEDIA-1"}},
        {"touser": OPENID, "msgtype": "text", "text": {"content": "🏅 恭喜获得本月冠军"}},
    ]
    assert [c.path for c in fake.calls][:2] == ["media/upload", "message/custom/send"]
    assert pushes(engine, iid) == 4


def test_oa_caption_skipped_for_the_last_push_of_the_window(db_url: str, engine: Engine, fake: FakeWeixin,
                                                             png: Path) -> None:
    iid = identity(engine, seen_hours_ago=2, pushes=4)
    assert run(WeChatPush(settings(db_url, fake), engine), image_item(png, iid))[0].outcome == "sent"
    (call,) = fake.sent("message/custom/send")
    assert call.body["msgtype"] == "image" and pushes(engine, iid) == 5


def test_oa_image_outside_the_window_is_undeliverable_even_with_a_template(db_url: str, engine: Engine,
                                                                           fake: FakeWeixin, png: Path) -> None:
    late = identity(engine, seen_hours_ago=49)
    used = identity(engine, seen_hours_ago=1, pushes=5, user_ref="oQuotaUsedUp00000000000000000")
    gone = identity(engine, active=False, user_ref="oUnfollowed000000000000000000")
    sender = WeChatPush(settings(db_url, fake, wechat_template_id=TEMPLATE), engine)
    results = run(sender, image_item(png, late), image_item(png, used, chat_ref="oQuotaUsedUp00000000000000000"),
                  image_item(png, gone, chat_ref="oUnfollowed000000000000000000"))
    assert [(r.outcome, r.error) for r in results] == [("undeliverable", "wechat_window_closed")] * 2 + [
        ("blocked", "wechat_unsubscribed")]
    assert fake.calls == [] and fake.token_fetches == 0


def test_oa_image_errors(db_url: str, engine: Engine, fake: FakeWeixin, png: Path, tmp_path: Path) -> None:
    iid = identity(engine)
    fake.fail_next("media/upload", 40004, "invalid media type")
    fake.fail_next("media/upload", -1, "system error")
    fake.fail_next("message/custom/send", 45047, "out of response count limit")
    other = tmp_path / "board.png"
    other.write_bytes(PNG + b"board")
    fake.fail_next("message/custom/send", 40007, "invalid media_id")
    results = run(WeChatPush(settings(db_url, fake), engine), *(image_item(png, iid) for _ in range(3)),
                  image_item(other, iid), image_item(other, iid))
    assert [(r.outcome, (r.error or "").split(":")[0]) for r in results] == [
        ("failed", "wechat_upload_40004"), ("retry", "wechat_upload_-1"),
        ("undeliverable", "wechat_window_quota"), ("retry", "wechat_40007"), ("sent", "")]
    # the media id WeChat forgot is uploaded again
    assert len(fake.uploads()) == 5 and fake.sent("message/custom/send")[-2].body["image"] == {"media_id": "MEDIA-5"}


def test_upload_refreshes_a_rejected_token(db_url: str, engine: Engine, fake: FakeWeixin, png: Path) -> None:
    iid = identity(engine)
    assert run(WeChatPush(settings(db_url, fake), engine), image_item(png, iid, caption=""))[0].outcome == "sent"
    fake.revoke_tokens()
    assert run(WeChatPush(settings(db_url, fake), engine), image_item(png, iid, caption=""))[0].outcome == "sent"
    assert fake.token_fetches == 2
    assert [(c.path, c.token) for c in fake.calls] == [
        ("media/upload", "TOKEN-1"), ("message/custom/send", "TOKEN-1"),
        ("media/upload", "TOKEN-1"), ("media/upload", "TOKEN-2"), ("message/custom/send", "TOKEN-2")]


# ---- WeCom ----------------------------------------------------------------------------------------------------


def test_wecom_image_to_a_member_and_a_group(db_url: str, engine: Engine, fake: FakeWeixin, png: Path) -> None:
    results = run(WeComPush(settings(db_url, fake), engine), image_item(png, chat_ref="zhangsan", platform="wecom"),
                  image_item(png, chat_ref="wrk-team-east", platform="wecom", is_group=True, caption="本月排行榜"))
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert_upload(fake, png)
    assert [c.body for c in fake.sent("message/send")] == [
        {"touser": "zhangsan", "msgtype": "image", "agentid": 1000002, "image": {"media_id": "MEDIA-1"}},
        {"touser": "zhangsan", "msgtype": "text", "agentid": 1000002, "text": {"content": "🏅 恭喜获得本月冠军"}},
    ]
    assert [c.body for c in fake.sent("appchat/send")] == [
        {"chatid": "wrk-team-east", "msgtype": "image", "image": {"media_id": "MEDIA-1"}},
        {"chatid": "wrk-team-east", "msgtype": "text", "text": {"content": "本月排行榜"}},
    ]


def test_wecom_image_outcomes(db_url: str, engine: Engine, fake: FakeWeixin, png: Path) -> None:
    fake.fail_next("message/send", 81013, "user & party & tag all invalid")
    fake.fail_next("appchat/send", 86003, "chat not found")
    fake.fail_next("message/send", 0, "ok")  # the image goes; its caption fails: still sent, once
    fake.fail_next("message/send", 45033, "api concurrent out of limit")
    results = run(WeComPush(settings(db_url, fake), engine), image_item(png, chat_ref="lisi", platform="wecom"),
                  image_item(png, chat_ref="wrk-gone", platform="wecom", is_group=True),
                  image_item(png, chat_ref="zhangsan", platform="wecom"))
    assert [(r.outcome, r.error) for r in results] == [
        ("blocked", "wecom_invalid_user"), ("blocked", "wecom_chat_not_found"), ("sent", None)]
    assert len(fake.uploads()) == 1


# ---- the file ---------------------------------------------------------------------------------------------------


def test_a_missing_or_empty_file_fails_without_a_call(db_url: str, engine: Engine, fake: FakeWeixin,
                                                      tmp_path: Path) -> None:
    iid = identity(engine)
    missing = tmp_path / "contest-9-board.png"
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    oa = run(WeChatPush(settings(db_url, fake), engine), image_item(missing, iid), image_item(empty, iid))
    wecom = run(WeComPush(settings(db_url, fake), engine), image_item(missing, chat_ref="zhangsan", platform="wecom"))
    for result in (oa[0], wecom[0]):
        assert result.outcome == "failed"
        assert result.error == f"image_unreadable: No such file or directory: {missing}"
    assert (oa[1].outcome, oa[1].error) == ("failed", f"image_empty: {empty}")
    assert fake.calls == [] and fake.token_fetches == 0 and pushes(engine, iid) == 0
