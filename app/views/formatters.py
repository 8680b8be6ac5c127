"""Column formatters shared by the views: how stored values read on a page."""
from app.services.clock import to_local


def label(choices):
    """A formatter showing a stored choice by its translated label."""
    return lambda value: choices.labels().get(value, value or "")


def blank(value):
    """None shows as an empty cell, not as "None"."""
    return "" if value is None else value


def as_hours(minutes):
    """Integer minutes as hours with one decimal."""
    return f"{(minutes or 0) / 60:.1f}"


def local_day(value) -> str:
    """A stored UTC time as its Asia/Shanghai date."""
    return to_local(value).strftime("%Y-%m-%d") if value else ""


def local_minute(value) -> str:
    """A stored UTC time in Asia/Shanghai, to the minute."""
    return to_local(value).strftime("%Y-%m-%d %H:%M") if value else ""
