"""`parse_xml` reads what xmltodict reads: its own plain-shape parser (`_flat`) and xmltodict agree on
every document, plain or not, and refuse the same ones."""

from __future__ import annotations

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.wechat.callback_xml import Rejected, _flat, parse_xml


def reference(data: bytes | str) -> dict[str, str] | str:
    """What `parse_xml` returned when it was xmltodict alone (a refusal as its reason's start)."""
    try:
        doc = xmltodict.parse(data, disable_entities=True)
    except ValueError as exc:
        return f"XML refused: {exc}"
    except Exception as exc:
        return f"not XML: {type(exc).__name__}"
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        return "XML without an <xml> root element"
    return {str(k): v if isinstance(v, str) else "" if v is None else str(v) for k, v in root.items()}


def ours(data: bytes | str) -> dict[str, str] | str:
    try:
        return parse_xml(data)
    except Rejected as exc:
        return exc.reason


NAMES = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event",
                         "EventKey", "AgentID", "ChatId", "a:b", "xml", "Encrypt", "Recognition", "ScanType"])
TEXTS = st.sampled_from(["", " ", "排行", " 排行 ", "&amp;", "&lt;x&gt;", "\n\t", "1", "<![CDATA[ x ]]>", "<![CDATA[]]>",
                         "<![CDATA[a]]]]><![CDATA[>b]]>", "a<!-- c -->b", "<?pi x?>", "&#x41;", "x\ny ", "text"] * 3
                        + ["a]]>b", "&ent;", "<"])  # the last ones not XML
ATTRS = st.sampled_from([""] * 12 + [' a="1"', " xmlns='u'"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    def element(depth: int, name: str) -> str:
        if depth < 3 and draw(st.integers(0, 12)) == 0:
            inner = "".join(element(depth + 1, draw(NAMES)) for _ in range(draw(st.integers(0, 2))))
        else:
            inner = draw(TEXTS)
        return f"<{name}{draw(ATTRS)}>{inner}</{name}>"

    root = draw(st.sampled_from(["xml"] * 8 + ["root"]))
    names = draw(st.lists(NAMES, max_size=6, unique=draw(st.integers(0, 3)) > 0))  # mostly each name once
    children = [element(2, name) for name in names]
    between = draw(st.sampled_from(["", "", "\n", "\n", " x "]))
    head = draw(st.sampled_from(["", "", "", "", "", '<?xml version="1.0" encoding="utf-8"?>', "<!DOCTYPE xml>",
                                 '<!DOCTYPE xml [<!ENTITY e "x">]>']))
    tail = draw(st.sampled_from(["", "", "", "\n", "<x/>", "<!-- end -->"]))
    return f"{head}<{root}{draw(ATTRS)}>{between.join(children)}</{root}>{tail}"


@settings(max_examples=600, deadline=None)
@given(documents(), st.booleans())
def test_the_plain_shape_reads_as_xmltodict_reads_it(doc: str, as_bytes: bool) -> None:
    data: bytes | str = doc.encode("utf-8") if as_bytes else doc
    assert ours(data) == reference(data)


@pytest.mark.parametrize("doc", [
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[ 排行 ]]></Content><MsgId>1</MsgId></xml>",
    "<xml>\n  <MsgType>text</MsgType>\n  <Content/>\n</xml>",
])
def test_a_callback_is_read_by_the_plain_parser(doc: str) -> None:
    assert _flat(doc) is not None
    assert ours(doc) == reference(doc)


@pytest.mark.parametrize("doc", [
    "<xml a='1'><Content>x</Content></xml>",  # attributes
    "<xml><Content>x</Content><Content>y</Content></xml>",  # a name twice: xmltodict's list
    "<xml><ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo></xml>",  # nested
    "<xml>text<Content>x</Content></xml>",  # the root's own text
    "<xml></xml>", "<other><a>1</a></other>", '<!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>',
])
def test_any_other_document_is_left_to_xmltodict(doc: str) -> None:
    assert _flat(doc) is None or ours(doc) == reference(doc)
    assert ours(doc) == reference(doc)
