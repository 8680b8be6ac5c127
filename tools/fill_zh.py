"""Fill the zh catalogue from the glossary after ``make babel-extract``.

    .venv/bin/python tools/fill_zh.py           # fill, prune obsolete, report the rest
    .venv/bin/python tools/fill_zh.py --check   # change nothing; exit 1 if work is left

What it does to ``translations/zh/LC_MESSAGES/messages.po``:

* an empty or fuzzy msgstr whose msgid is a glossary label (``GLOSSARY`` below,
  copied verbatim from the shared GLOSSARY.md) gets the glossary's Chinese;
* obsolete ``#~`` entries (msgids gone from the code) are dropped;
* it lists msgids still untranslated or fuzzy, and translated glossary labels
  whose msgstr differs from the glossary (it never overwrites a translation).

Everything else is translated by hand in the .po, which stays the only source of
translations; this table only seeds glossary words. The file is written the way
``pybabel update`` writes it, so a later ``make babel-extract`` does not reformat it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO_PATH = ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po"

# English label -> verbatim zh_CN (GLOSSARY.md). Some labels are not msgids yet.
GLOSSARY = {
    # Navigation and buttons
    "Log in": "登录",
    "Login": "登录",
    "Log out": "退出",
    "Logout": "退出",
    "Register as volunteer": "注册志愿者",
    "Register a group": "团体注册",
    "User Center": "用户中心",
    "My Profile": "我的资料",
    "Groups": "志愿团体",
    "Volunteer Groups": "志愿团体",
    "My Groups": "我的团体",
    "Join More Groups": "参加更多团体",
    "Search": "搜索",
    "Join": "加入",
    "Projects": "志愿项目",
    "Volunteer Projects": "志愿项目",
    "My Projects": "我的项目",
    "Join More Projects": "参加更多项目",
    "Sign Up": "报名",
    "Service Hours": "服务时长",
    "Enter Hour Code": "录入时长码",
    "Apply for Hours": "申请时长",
    "Submit": "提交",
    "Volunteer Card": "志愿者证",
    "Group Card": "团体名片",
    "My Certificates": "我的证明",
    "Transfer Records": "转移接续",
    "My Help Requests": "我的求助",
    "Post a Help Request": "发布求助",
    "Group Admin": "团体管理",
    "My Members": "我的成员",
    "Add Volunteer": "添加志愿者",
    "Invite": "邀请",
    "Join Requests": "入团审核",
    "Publish New Project": "发布新项目",
    "Position": "岗位",
    "Positions": "岗位",
    "Timekeeping": "计时",
    "Record Hours": "录入时长",
    "Generate Hour Code": "生成时长码",
    "Hour Code": "时长码",
    "Close Project": "结项",
    "Closed": "结项",
    "Backfill Recruitment": "时间补录招募",
    "Child Group Review": "下级团体审核",
    "Region Oversight": "区域监管",
    "Registration Review": "注册审核",
    "Honors": "表彰激励",
    "Statistics": "统计分析",
    "Audit Log": "审计日志",
    # Domain words
    "Volunteer": "志愿者",
    "Volunteers": "志愿者",
    "Volunteer Group": "志愿团体",
    "Parent group": "上级团体",
    "Federation": "志愿服务联合会",
    "Corps": "志愿服务总队",
    "Team": "志愿服务队",
    "Civil unit": "文明单位",
    "Project": "志愿项目",
    "Enrollment": "报名",
    "Recruit scope": "招募范围",
    "Anyone": "不限",
    "Members of this group only": "仅限本团体志愿者",
    "Service record": "服务记录",
    "Service records": "服务记录",
    "Honor": "表彰激励",
    "Training": "培训",
    "Evaluation": "评价",
    "Star level": "星级",
    "Certificate": "志愿服务记录证明",
    "Transfer": "转移接续",
    "Help request": "求助信息",
    "Help requests": "求助信息",
    "Region": "行政区划",
    "Regions": "行政区划",
    "ID type": "证件类型",
    "ID number": "证件号码",
    "Guardian": "监护人",
    "Review": "审核",
    "Pending": "待审核",
    "Approved": "已通过",
    "Rejected": "未通过",
    "Join policy": "入团方式",
    "Anyone may join": "允许任何人加入",
    "Join after verification": "验证信息后加入",
    "Nobody may join": "拒绝任何人加入",
    "Join with password": "免审密码",
}


def load(path: Path = PO_PATH):
    with path.open("rb") as f:
        return read_po(f, locale="zh")


def save(catalog, path: Path = PO_PATH) -> None:
    # The same call pybabel update makes (width 76, obsolete kept if any).
    with path.open("wb") as f:
        write_po(f, catalog, width=76)


def fill(catalog, table: dict[str, str] = GLOSSARY) -> list[str]:
    """Fill empty or fuzzy msgstrs from ``table``; return the msgids filled."""
    filled = []
    for message in catalog:
        if not message.id or isinstance(message.id, tuple):
            continue
        if (not message.string or message.fuzzy) and message.id in table:
            message.string = table[message.id]
            message.flags.discard("fuzzy")
            filled.append(message.id)
    return filled


def problems(catalog) -> dict[str, list[str]]:
    """What is left to do: untranslated, fuzzy, obsolete, off-glossary."""
    out: dict[str, list[str]] = {"untranslated": [], "fuzzy": [], "obsolete": [], "off-glossary": []}
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            out["untranslated"].append(msgid)
        elif message.fuzzy:
            out["fuzzy"].append(msgid)
        elif msgid in GLOSSARY and message.string != GLOSSARY[msgid]:
            out["off-glossary"].append(f"{msgid} -> {message.string} (glossary: {GLOSSARY[msgid]})")
    out["obsolete"] = [m if isinstance(m, str) else m[0] for m in catalog.obsolete]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if work is left")
    parser.add_argument("--po", type=Path, default=PO_PATH)
    parser.add_argument("--from", dest="sources", type=Path, action="append", default=[],
                        help="a JSON file {msgid: msgstr} of new translations (after the glossary)")
    args = parser.parse_args(argv)

    table = dict(GLOSSARY)
    for source in args.sources:
        table = {**json.loads(source.read_text(encoding="utf-8")), **table}
    catalog = load(args.po)
    if not args.check:
        filled = fill(catalog, table)
        dropped = list(catalog.obsolete)
        catalog.obsolete.clear()
        if filled or dropped:
            save(catalog, args.po)
        for msgid in filled:
            print(f"filled: {msgid}")
        for msgid in dropped:
            print(f"dropped obsolete: {msgid}")

    left = problems(catalog)
    for kind, msgids in left.items():
        for msgid in msgids:
            print(f"{kind}: {msgid}")
    blocking = left["untranslated"] or left["fuzzy"] or left["obsolete"]
    if args.check:
        return 1 if blocking or left["off-glossary"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
