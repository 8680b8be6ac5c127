"""The zh catalogue is complete, compiles, keeps placeholders and uses the glossary.

Pure file tests: no database, no app. After changing msgids run
``make babel-extract``, translate (``tools/fill_zh.py`` seeds glossary words and
drops obsolete entries), then ``make translations``.
"""
from __future__ import annotations

import ast
import importlib.util
import io
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

ROOT = Path(__file__).resolve().parents[2]
POT_PATH = ROOT / "translations" / "messages.pot"
PO_PATH = ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
FAB_MSGIDS_PATH = ROOT / "translations" / "fab_msgids.py"

# English label -> verbatim zh_CN from GLOSSARY.md.
GLOSSARY_PAIRS = {
    "Region Oversight": "区域监管",
    "Regions": "行政区划",
    "Honors": "表彰激励",
    "User Center": "用户中心",
    "Group Admin": "团体管理",
    "Statistics": "统计分析",
    "Audit Log": "审计日志",
    "Pending": "待审核",
    "Approved": "已通过",
    "Rejected": "未通过",
    "Anyone may join": "允许任何人加入",
    "Join after verification": "验证信息后加入",
    "Nobody may join": "拒绝任何人加入",
    "Join with password": "免审密码",
    "Anyone": "不限",
    "Members of this group only": "仅限本团体志愿者",
    "Login": "登录",
    "Logout": "退出",
    "Search": "搜索",
}
REQUIRED_GLOSSARY_MSGIDS = ("Region Oversight", "Regions")

# %(name)s, %s, %d, %%, {name}
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]|\{\w*\}")


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f, locale="zh" if path.suffix == ".po" else None)


@pytest.fixture(scope="module")
def pot():
    return _read(POT_PATH)


@pytest.fixture(scope="module")
def po():
    return _read(PO_PATH)


def _key(message):
    return (message.id, message.context)


def _strings(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _ids(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def test_every_msgid_has_zh_translation(pot, po):
    problems = []
    for message in pot:
        if not message.id:
            continue
        translated = po.get(message.id, context=message.context)
        if translated is None:
            problems.append(f"missing from messages.po: {message.id!r}")
        elif not all(_strings(translated.string)):
            problems.append(f"no zh msgstr: {message.id!r}")
        elif translated.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")

    pot_keys = {_key(m) for m in pot if m.id}
    for message in po:
        if message.id and _key(message) not in pot_keys:
            problems.append(f"stale (not in messages.pot, run make babel-extract): {message.id!r}")
    for msgid in po.obsolete:
        problems.append(f"obsolete #~ entry (run tools/fill_zh.py to drop it): {msgid!r}")

    assert not problems, "zh catalogue incomplete:\n" + "\n".join(problems)


def test_catalogue_compiles(po):
    errors = [
        f"{message.id!r}: {error}"
        for message, message_errors in po.check()
        for error in message_errors
    ]
    for message in po:
        if not message.id or not all(_strings(message.string)):
            continue
        expected = Counter(PLACEHOLDER.findall(_ids(message.id)[0]))
        for string in _strings(message.string):
            found = Counter(PLACEHOLDER.findall(string))
            if found != expected:
                errors.append(f"{message.id!r}: placeholders {dict(found)} != msgid's {dict(expected)}")
    assert not errors, "catalogue errors:\n" + "\n".join(errors)

    buf = io.BytesIO()
    write_mo(buf, po)
    buf.seek(0)
    translations = Translations(fp=buf)
    translated = [m for m in po if m.id and all(_strings(m.string)) and not m.fuzzy]
    assert translated, "empty catalogue"
    for message in translated:
        if isinstance(message.id, str) and message.context is None:
            assert translations.gettext(message.id) == message.string


def test_glossary_words_are_used(pot, po):
    present = {m.id for m in pot if m.id}
    for msgid in REQUIRED_GLOSSARY_MSGIDS:
        assert msgid in present, f"{msgid!r} should be a msgid in messages.pot"
    wrong = []
    for english, chinese in GLOSSARY_PAIRS.items():
        if english not in present:
            continue
        message = po.get(english)
        actual = message.string if message is not None else None
        if actual != chinese:
            wrong.append(f"{english!r} -> {actual!r}, glossary says {chinese!r}")
    assert not wrong, "off-glossary translations:\n" + "\n".join(wrong)


def _fab_msgids_listed() -> list[str]:
    tree = ast.parse(FAB_MSGIDS_PATH.read_text(encoding="utf-8"))
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
        and node.args and isinstance(node.args[0], ast.Constant)
    ]


def test_fab_msgids_are_used_by_fab():
    """translations/fab_msgids.py lists only msgids the installed FAB really uses."""
    fab_dir = Path(importlib.util.find_spec("flask_appbuilder").origin).parent
    method_map = [
        ("**/translations/**", "ignore"),
        ("**/static/**", "ignore"),
        ("**.py", "python"),
        ("**.html", "jinja2"),
    ]
    keywords = {"_": None, "gettext": None, "lazy_gettext": None}
    used = {
        _ids(message)[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(fab_dir), method_map=method_map, keywords=keywords)
    }
    listed = _fab_msgids_listed()
    assert listed, "no msgids found in fab_msgids.py"
    duplicates = [m for m, n in Counter(listed).items() if n > 1]
    unknown = [m for m in listed if m not in used]
    assert not duplicates, f"listed twice in fab_msgids.py: {duplicates}"
    assert not unknown, f"not msgids of the installed Flask-AppBuilder: {unknown}"
