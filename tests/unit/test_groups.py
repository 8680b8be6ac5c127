"""Group rules without HTTP: the GB 32100 credit code check, the naming rules, names and phones."""
from __future__ import annotations

import importlib
import json
import random

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import GroupType, VolunteerGroup
from app.services import groups, regions
from app.services.errors import ValidationFailed
from app.services.groups import NamingRule, name_pattern, naming_problem, naming_rule_for
from app.services.idcards import CREDIT_CODE_ALPHABET, credit_code_check_char, parse_credit_code

KAIFENG_RULE = NamingRule(region="410200", federation="开封市志愿服务联合会",
                          corps_suffixes=("县志愿服务总队", "区志愿服务总队"), team_suffixes=("志愿服务队",))


def _generated_codes(n: int = 20) -> list[str]:
    rng = random.Random(32100)
    codes = []
    for _ in range(n):
        body = "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(17))
        codes.append(body + credit_code_check_char(body))
    return codes


# --- Unified social credit code (GB 32100) ---


def test_credit_code__published_examples_pass(app):
    with app.test_request_context():
        assert parse_credit_code("91350100M000100Y43") == "91350100M000100Y43"
        assert parse_credit_code(" 91110000802100433b ") == "91110000802100433B"


def test_credit_code__check_char_follows_the_standard_formula():
    for code in _generated_codes():
        total = sum(CREDIT_CODE_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(code[:17]))
        assert code[17] == CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def test_credit_code__every_single_character_corruption_is_refused(app):
    with app.test_request_context():
        for code in _generated_codes(5):
            assert parse_credit_code(code) == code
            for position in range(18):
                for ch in CREDIT_CODE_ALPHABET + "IOSVZ*":
                    if ch == code[position]:
                        continue
                    corrupted = code[:position] + ch + code[position + 1:]
                    with pytest.raises(ValidationFailed):
                        parse_credit_code(corrupted)


@pytest.mark.parametrize("code", ["", "9135010", "91350100M000100Y4", "91350100M000100Y433", "91350100M000100Y4三"])
def test_credit_code__wrong_length_or_characters_refused(app, code):
    with app.test_request_context(), pytest.raises(ValidationFailed):
        parse_credit_code(code)


def test_credit_code__demo_groups_use_the_same_check(app):
    with app.test_request_context():
        codes = db.session.scalars(select(VolunteerGroup.credit_code).where(
            VolunteerGroup.credit_code.is_not(None))).all()
        assert codes and all(parse_credit_code(code) == code for code in codes)


# --- Naming rules ---


@pytest.mark.parametrize("name, group_type, ok", [
    ("龙亭区志愿服务总队", GroupType.COUNTY_CORPS, True),
    ("杞县志愿服务总队", GroupType.COUNTY_CORPS, True),
    ("顺河回族区志愿服务总队", GroupType.COUNTY_CORPS, True),
    ("龙亭区志愿服务队", GroupType.COUNTY_CORPS, False),
    ("区志愿服务总队", GroupType.COUNTY_CORPS, False),  # nothing before the suffix
    ("龙亭区志愿者协会", GroupType.COUNTY_CORPS, False),
    ("北书店街道社区志愿服务队", GroupType.COMMUNITY, True),
    ("龙亭区文化馆志愿服务队", GroupType.CIVIL_UNIT, True),
    ("龙亭区志愿服务总队", GroupType.SCHOOL, False),  # a corps name for a team
    ("开封大学青年志愿者协会", GroupType.SCHOOL, False),
    ("志愿服务队", GroupType.ENTERPRISE, False),
    ("随便什么名字", GroupType.FEDERATION, True),  # federations are not checked
])
def test_naming_problem__kaifeng_rule(app, name, group_type, ok):
    with app.test_request_context():
        problem = naming_problem(KAIFENG_RULE, name, group_type)
    assert (problem is None) == ok, problem


@pytest.mark.parametrize("name, county, ok", [
    ("龙亭区志愿服务总队", "龙亭区", True),
    ("顺河回族区志愿服务总队", "顺河回族区", True),
    ("通许县志愿服务总队", "通许县", True),
    ("顺河区志愿服务总队", "龙亭区", False),  # another county's name
    ("顺河区志愿服务总队", "顺河回族区", False),  # the short name is not enough
    ("开封市龙亭区志愿服务总队", "龙亭区", False),
    ("龙亭区志愿服务总队", None, True),  # no county known: the suffix only
])
def test_naming_problem__county_corps_starts_with_its_county(app, name, county, ok):
    with app.test_request_context():
        problem = naming_problem(KAIFENG_RULE, name, GroupType.COUNTY_CORPS, county=county)
    assert (problem is None) == ok, problem
    if not ok:
        assert problem == f"县（区）志愿服务总队的名称须以所在县（区）的名称“{county}”开头。"


def test_county_of__the_county_level_region_containing_a_region(app):
    with app.app_context():
        assert groups.county_of(regions.region_by_code("410202")).code == "410202"
        assert groups.county_of(regions.region_by_code("410202001")).code == "410202"
        assert groups.county_of(regions.region_by_code("410200")) is None
        assert groups.county_of(None) is None


def test_other_county_corps__one_per_county_unless_rejected(db_session):
    longting = regions.region_by_code("410202")
    corps = groups.other_county_corps(longting)
    assert corps is not None and corps.name == "龙亭区志愿服务总队"
    assert groups.other_county_corps(longting, exclude_id=corps.id) is None
    corps.status = "rejected"
    db.session.flush()
    assert groups.other_county_corps(longting) is None
    assert groups.other_county_corps(regions.region_by_code("410212")) is None  # 祥符区: none yet


def test_hierarchy_problems__region_within_parent_and_federation_under_federation(app):
    with app.test_request_context():
        by_name = {g.name: g for g in db.session.scalars(select(VolunteerGroup))}
        corps, henan, kaifeng = by_name["龙亭区志愿服务总队"], by_name["河南省志愿服务联合会"], by_name["开封市志愿服务联合会"]
        jinshui, longting_street = regions.region_by_code("410105"), regions.region_by_code("410202001")
        assert groups.hierarchy_problems(GroupType.COMMUNITY, longting_street, corps) == {}
        assert groups.hierarchy_problems(GroupType.COMMUNITY, regions.region_by_code("410202"), corps) == {}
        outside = groups.hierarchy_problems(GroupType.COMMUNITY, jinshui, corps)
        assert set(outside) == {"region_code"} and "龙亭区" in outside["region_code"]
        assert groups.hierarchy_problems(GroupType.FEDERATION, regions.region_by_code("410200"), henan) == {}
        assert groups.hierarchy_problems(GroupType.FEDERATION, None, None) == {}
        team_parent = groups.hierarchy_problems(GroupType.FEDERATION, longting_street, corps)
        assert set(team_parent) == {"parent"} and "龙亭区志愿服务总队" in team_parent["parent"]
        assert groups.hierarchy_problems(GroupType.FEDERATION, jinshui, kaifeng).keys() == {"region_code"}


def test_demo_groups__satisfy_the_hierarchy_and_county_corps_rules(app):
    """Every demo group, approved or pending: within its parent's region, federations under
    federations, and under a city rule a county corps named after its county, one per county."""
    with app.test_request_context():
        rules = groups.naming_rules()
        demo = db.session.scalars(select(VolunteerGroup)).all()
        assert len(demo) >= 13
        for group in demo:
            assert groups.hierarchy_problems(group.group_type, group.region, group.parent) == {}, group.name
            rule = naming_rule_for(group.region_path, rules)
            if rule is None or group.group_type != GroupType.COUNTY_CORPS:
                continue
            county = groups.county_of(group.region)
            assert county is not None, group.name
            assert naming_problem(rule, group.name, group.group_type, county=county.name) is None, group.name
            assert groups.other_county_corps(county, exclude_id=group.id) is None, group.name


def test_naming_problem__message_shows_the_pattern(app):
    with app.test_request_context():
        corps = naming_problem(KAIFENG_RULE, "祥符区总队", GroupType.COUNTY_CORPS)
        team = naming_problem(KAIFENG_RULE, "某某服务中心", GroupType.SOCIAL_ORG)
        assert name_pattern(KAIFENG_RULE.corps_suffixes) == "“××县志愿服务总队”或“××区志愿服务总队”"
    assert corps == "团体名称应为“××县志愿服务总队”或“××区志愿服务总队”。"
    assert team == "团体名称应为“××志愿服务队”。"


def test_naming_rule_for__covers_the_city_and_below_only():
    rules = [KAIFENG_RULE]
    assert naming_rule_for("410000/410200/", rules) is KAIFENG_RULE
    assert naming_rule_for("410000/410200/410202/410202001/", rules) is KAIFENG_RULE
    assert naming_rule_for("410000/410100/410105/", rules) is None  # 郑州
    assert naming_rule_for("410000/", rules) is None
    assert naming_rule_for(None, rules) is None
    assert naming_problem(None, "随便", GroupType.COMMUNITY) is None


def test_naming_rules__read_from_config(app):
    with app.app_context():
        assert groups.naming_rules() == [KAIFENG_RULE]
        app.config["GROUP_NAMING_RULES"] = [{"region": "410100", "corps_suffixes": ["总队"]}]
        assert groups.naming_rules() == [NamingRule("410100", "", ("总队",), ())]


def test_config__group_naming_rules_env_var_overrides(monkeypatch):
    import config

    try:
        monkeypatch.setenv("GROUP_NAMING_RULES", json.dumps([{"region": "410300", "team_suffixes": ["队"]}]))
        assert importlib.reload(config).GROUP_NAMING_RULES == [{"region": "410300", "team_suffixes": ["队"]}]
    finally:
        monkeypatch.delenv("GROUP_NAMING_RULES")
        assert importlib.reload(config).GROUP_NAMING_RULES[0]["region"] == "410200"


def test_parent_problem__team_takes_its_county_corps_and_corps_the_federation(app):
    with app.test_request_context():
        by_name = {g.name: g for g in db.session.scalars(select(VolunteerGroup))}
        street = regions.region_by_code("410202001")
        corps, shunhe, federation = (by_name["龙亭区志愿服务总队"], by_name["顺河回族区志愿服务总队"],
                                     by_name["开封市志愿服务联合会"])
        assert groups.parent_problem(KAIFENG_RULE, GroupType.COMMUNITY, street, corps) is None
        assert "龙亭区志愿服务总队" in groups.parent_problem(KAIFENG_RULE, GroupType.COMMUNITY, street, shunhe)
        assert "龙亭区志愿服务总队" in groups.parent_problem(KAIFENG_RULE, GroupType.COMMUNITY, street, None)
        county = regions.region_by_code("410202")
        assert groups.parent_problem(KAIFENG_RULE, GroupType.COUNTY_CORPS, county, federation) is None
        assert "开封市志愿服务联合会" in groups.parent_problem(KAIFENG_RULE, GroupType.COUNTY_CORPS, county, corps)
        city = regions.region_by_code("410200")  # no county corps contains the city itself
        assert "尚无" in groups.parent_problem(KAIFENG_RULE, GroupType.CIVIL_UNIT, city, federation)
        assert groups.parent_problem(KAIFENG_RULE, GroupType.FEDERATION, city, None) is None


# --- Names and phones ---


@pytest.mark.parametrize("raw, stored", [
    ("  北书店街道社区志愿服务队 ", "北书店街道社区志愿服务队"),
    ("龙亭区\u3000测试  志愿服务队", "龙亭区测试志愿服务队"),  # Chinese group names have no spaces
    ("北书店街道社区\u3000志愿服务队", "北书店街道社区志愿服务队"),
    ("北书店街道社区\u200b志愿服务队", "北书店街道社区志愿服务队"),  # zero-width space (Cf)
    ("\ufeff北书店\u200d街道\u2060社区\u202e志愿服务队", "北书店街道社区志愿服务队"),  # BOM, joiners, bidi
    ("\x00\x01测试志愿服务队", "测试志愿服务队"),  # control characters (Cc)
    ("北书店\t街道\n社区\xa0志愿服务队", "北书店街道社区志愿服务队"),
    ("ＡＢＣ志愿服务队", "ABC志愿服务队"),  # NFKC: full-width letters
    ("第１志愿服务队", "第1志愿服务队"),
    ("\u3000", ""),
    ("\u200b\x00 \u3000", ""),
    (None, ""),
])
def test_normalize_name(raw, stored):
    assert groups.normalize_name(raw) == stored


def test_normalize_name__is_idempotent():
    for raw in ("ＡＢＣ\u3000志愿\u200b服务队", "\x00\x01测试志愿服务队", "龙亭区志愿服务总队"):
        once = groups.normalize_name(raw)
        assert groups.normalize_name(once) == once


def test_name_taken__normalised_and_case_insensitive(db_session):
    """Every spelling of a stored name is taken: width, spaces, invisible characters, case."""
    for raw in ("北书店街道社区　志愿服务队", "北书店街道社区\u200b志愿服务队", "\x00\x01北书店街道社区志愿服务队"):
        assert groups.name_taken(groups.normalize_name(raw)), raw
    group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "北书店街道社区志愿服务队"))
    group.name = "abc志愿服务队"
    db.session.flush()
    for raw in ("ABC志愿服务队", "ＡＢＣ志愿服务队", "aBc志愿服务队"):
        assert groups.name_taken(groups.normalize_name(raw)), raw
    assert not groups.name_taken("abc志愿服务队", exclude_id=group.id)
    assert not groups.name_taken("abd志愿服务队")


@pytest.mark.parametrize("raw, stored", [
    ("13912345678", "13912345678"),
    ("+86 139 1234 5678", "13912345678"),
    ("0371-22345678", "037122345678"),
    ("(0371) 2234 5678", "037122345678"),
    ("22345678", None),  # a landline needs its area code
    ("12345", None),
    ("", None),
    ("abc", None),
])
def test_normalize_phone__mobile_or_landline(raw, stored):
    assert groups.normalize_phone(raw) == stored


def test_reviewable_groups_clause__tier_follows_the_parent_chain(app):
    from app.security.scope import Scope

    with app.app_context():
        by_name = {g.name: g for g in db.session.scalars(select(VolunteerGroup))}
        corps, federation = by_name["龙亭区志愿服务总队"], by_name["开封市志愿服务联合会"]

        def reviewable(scope):
            return set(db.session.scalars(select(VolunteerGroup.name).where(
                VolunteerGroup.status == "pending", groups.reviewable_groups_clause(scope))))

        assert reviewable(Scope(group_paths=(corps.group_path,))) == {"龙亭区北道门社区志愿服务队"}
        # The federation administers the corps' path's ancestor, not the corps: no grandchildren.
        assert reviewable(Scope(group_paths=(federation.group_path,))) == set()
        assert reviewable(Scope(officer_paths=("410000/410200/",))) == {"开封市青年志愿者协会"}
        assert reviewable(Scope(officer_paths=("410000/410200/410202/",))) == set()
        assert reviewable(Scope(everything=True)) >= {"龙亭区北道门社区志愿服务队", "开封市青年志愿者协会"}
        assert reviewable(Scope()) == set()


# --- search_groups (参加更多团体, the parent picker) ---


def _found(keyword, **kwargs):
    return [g.name for g in groups.search_groups(keyword, **kwargs)[0]]


def test_search_groups__by_name_initials_or_full_pinyin(db_session):
    for keyword in ("龙亭区志愿", "ltqzy", "LTQ", "longtingqu"):
        assert "龙亭区志愿服务总队" in _found(keyword), keyword


def test_search_groups__wildcards_are_literal(db_session):
    """"%" and "_" match themselves, not every group."""
    assert _found("%") == [] and _found("_") == [] and _found("志愿%") == []


def test_search_groups__only_approved_groups(db_session):
    group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "龙亭区志愿服务总队"))
    group.status = "pending"
    db.session.flush()
    assert "龙亭区志愿服务总队" not in _found("龙亭")


def test_search_groups__pages(db_session):
    first, more = groups.search_groups("志愿", page_size=3)
    second, _ = groups.search_groups("志愿", page=1, page_size=3)
    assert len(first) == 3 and more and not {g.id for g in first} & {g.id for g in second}
    assert _found("") == [] and _found("   ") == []
