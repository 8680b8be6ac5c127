"""`flask` commands: bootstrap, load-regions, demo."""
import click
from flask import Flask
from flask.cli import with_appcontext

from app.extensions import db


def register(app: Flask) -> None:
    """Add the project's commands to ``app.cli``."""

    @app.cli.command("bootstrap")
    @with_appcontext
    def bootstrap_command():
        """Create roles and permission rows (after `flask db upgrade`)."""
        from app.security.bootstrap import bootstrap_security

        click.echo("roles: " + ", ".join(bootstrap_security()))

    @app.cli.command("load-regions")
    @with_appcontext
    def load_regions_command():
        """Load the national GB/T 2260 list to county level (idempotent)."""
        from app.services.regions import load_regions

        changed = load_regions()
        db.session.commit()
        click.echo(f"regions changed: {changed}")

    @app.cli.command("demo")
    @with_appcontext
    def demo_command():
        """Build the schema, bootstrap security, load regions and the Kaifeng demo (idempotent)."""
        from app.demo import load_demo

        summary = load_demo()
        click.echo(summary)
