"""A segment is defined once (`models.segments`): its Python check and its SQL filter choose the same partners."""

from __future__ import annotations

from dataclasses import fields

import pytest
from sqlalchemy import select
from sqlmodel import Session

from models import segments
from models.rows import Member
from models.rules import parse_segment
from models.tables import Partner
from tests.support.builders import partners

SEGMENTS = ["", "region=华东", "city_tier=1", "city_tier=2", "region=华东,city_tier=2", "industry=餐饮",
            "size=小", "team=T1", "team=T2", "team=NOBODY", "role=captain", "region=华北,team=T1,role=dealer",
            "region=西南"]


@pytest.mark.parametrize("text", SEGMENTS)
def test_matches_and_where_choose_the_same_partners(session: Session, text: str) -> None:
    partners(session,
             {"code": "S1", "region": "华东", "city_tier": "1", "industry": "餐饮", "size": "小", "team": "T1"},
             {"code": "S2", "region": "华东", "city_tier": "2", "industry": "零售", "team": "T2", "role": "captain"},
             {"code": "S3", "region": "华北", "city_tier": "3", "size": "大", "team": "T1"},
             {"code": "S4", "region": "", "city_tier": "", "industry": "", "size": ""},
             {"code": "S5", "region": "华北", "city_tier": "2", "team": "T1", "role": "admin"})
    segment = parse_segment(text, allow_role=True)
    everyone = session.execute(select(Partner).where(Partner.code.like("S%"))).scalars().all()
    in_sql = set(session.execute(segments.where(select(Partner.id).where(Partner.code.like("S%")), segment))
                 .scalars())
    in_python = {p.id for p in everyone if segments.matches(session, segment, p)}
    as_rows = {p.id for p in everyone
               if segments.matches(session, segment, Member(**{f.name: getattr(p, f.name) for f in fields(Member)}))}
    assert in_python == in_sql == as_rows
    assert in_sql or text in ("team=NOBODY", "region=西南")
