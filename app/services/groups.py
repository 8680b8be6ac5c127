"""Volunteer groups (志愿团体): registration in the hierarchy, review, settings, the join token."""
from __future__ import annotations

import secrets

from pypinyin import Style, lazy_pinyin

from app.models import VolunteerGroup

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
    return group is not None and group.status == "approved"
