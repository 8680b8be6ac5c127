"""Jinja filters shared by templates."""
from app.services.clock import to_local


def register(app) -> None:
    """Add the template filters to ``app``."""

    @app.template_filter("local_time")
    def local_time(value, fmt="%Y-%m-%d %H:%M"):
        """A stored UTC time, shown in Asia/Shanghai."""
        return to_local(value).strftime(fmt) if value else ""
