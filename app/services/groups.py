"""Volunteer groups (志愿团体): registration in the hierarchy, review, settings, the join token."""
from __future__ import annotations

import secrets

from pypinyin import Style, lazy_pinyin
from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import ReviewStatus, VolunteerGroup

NAME_PINYIN_MAX = 400  # VolunteerGroup.name_pinyin


def name_pinyin(name: str) -> str:
    """Pinyin initials and full pinyin of a group name, lower case, for search.

    ``"龙亭区志愿服务总队"`` -> ``"ltqzyfwzd longtingquzhiyuanfuwuzongdui"``: a search for
    ``ltq`` or ``longting`` finds it with one LIKE on this column.
    """
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()
    full = "".join(lazy_pinyin(name)).lower()
    return f"{initials} {full}"[:NAME_PINYIN_MAX]


def new_join_token() -> str:
    """A fresh random token for a group's join QR code (rotating it invalidates old codes)."""
    return secrets.token_urlsafe(16)


def is_approved(group: VolunteerGroup | None) -> bool:
    return group is not None and group.status == ReviewStatus.APPROVED


SEARCH_PAGE_SIZE = 20


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_groups(keyword: str, *, page: int = 0, page_size: int = SEARCH_PAGE_SIZE,
                  region_path: str | None = None) -> tuple[list[VolunteerGroup], bool]:
    """Approved groups whose name contains ``keyword``, or whose pinyin (initials or
    full) does; the shortest names first. Returns one page and whether more follow.

    Empty keyword: no results (the search is for finding a group, not listing all).
    """
    from app.security.scope import under

    keyword = (keyword or "").strip()[:50]
    if not keyword:
        return [], False
    pattern = f"%{_like_escape(keyword)}%"
    match = [VolunteerGroup.name.like(pattern, escape="\\")]
    if keyword.isascii() and keyword.replace(" ", "").isalpha():
        compact = _like_escape(keyword.replace(" ", "").lower())
        match.append(VolunteerGroup.name_pinyin.like(f"%{compact}%", escape="\\"))
    query = (select(VolunteerGroup)
             .where(VolunteerGroup.status == ReviewStatus.APPROVED, or_(*match))
             .order_by(func.length(VolunteerGroup.name), VolunteerGroup.name, VolunteerGroup.id)
             .offset(max(page, 0) * page_size).limit(page_size + 1))
    if region_path:
        query = query.where(under(VolunteerGroup.region_path, region_path))
    rows = list(db.session.scalars(query))
    return rows[:page_size], len(rows) > page_size
