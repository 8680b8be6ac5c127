"""Time: stored in UTC (naive), shown and reasoned about in Asia/Shanghai."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Return the current UTC time as a naive datetime, the form the database stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_local(value: datetime) -> datetime:
    """Return a stored (naive UTC) time as an aware Asia/Shanghai time."""
    return value.replace(tzinfo=timezone.utc).astimezone(LOCAL_TZ)


def to_utc(value: datetime) -> datetime:
    """Return a local (naive = Asia/Shanghai, or aware) time as naive UTC for storage."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def today() -> date:
    """Return today's date in Asia/Shanghai."""
    return datetime.now(LOCAL_TZ).date()
