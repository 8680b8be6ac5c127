"""`flask` commands: bootstrap, load-regions, demo, records export / import, stats rebuild, regions move."""
import click
from flask import Flask, current_app
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

    @app.cli.group("records")
    def records_group():
        """转移接续: export a volunteer's service records, import records from another system."""

    @records_group.command("export")
    @click.argument("volunteer_no")
    @click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
                  help="Write to this file instead of standard output.")
    @with_appcontext
    def records_export_command(volunteer_no, fmt, output):
        """Write the records of the volunteer with VOLUNTEER_NO (docs/record-format.md)."""
        from sqlalchemy import select

        from app.models import Volunteer
        from app.services import record_exchange

        volunteer = db.session.scalar(select(Volunteer).where(Volunteer.volunteer_no == volunteer_no.strip()))
        if volunteer is None:
            raise click.ClickException(f"no volunteer with the number {volunteer_no}")
        data = record_exchange.export_json(volunteer) if fmt == "json" else record_exchange.export_csv(volunteer)
        if output:
            with open(output, "wb") as out:
                out.write(data)
        else:
            click.get_binary_stream("stdout").write(data)

    @records_group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--user", "username", required=True, help="The officer the import is made by (their regions).")
    @click.option("--dry-run", is_flag=True, help="Check and report only; write nothing.")
    @with_appcontext
    def records_import_command(file, username, dry_run):
        """Check FILE (.json or .csv), print each row's result and apply the valid rows."""
        import os

        from app.security.scope import scope_for_user
        from app.services import record_exchange
        from app.services.errors import DomainError, ScopeViolation

        user = current_app.appbuilder.sm.find_user(username=username)
        if user is None or not user.is_active:
            raise click.ClickException(f"no active user {username}")
        scope = scope_for_user(user)
        if not (scope.everything or scope.officer_paths):
            raise click.ClickException(f"{username} is not an officer")
        result = None
        try:
            with open(file, "rb") as stream:
                batch = record_exchange.check_record_file(os.path.basename(file), stream, scope=scope,
                                                          actor_id=user.id)
            summary, batch_id = record_exchange.summarize_import(batch), batch.id
            if dry_run:
                db.session.rollback()
            else:
                db.session.commit()  # the checked batch is kept, as after an upload
                result = record_exchange.apply_record_import(batch, scope=scope, actor_id=user.id)
                summary = record_exchange.summarize_import(batch)
                db.session.commit()
        except ScopeViolation:
            db.session.rollback()
            raise click.ClickException(f"{username} may not import records") from None
        except DomainError as err:
            db.session.rollback()
            raise click.ClickException("; ".join(err.messages)) from None
        for row in sorted(summary.rows, key=lambda r: r["row"]):
            if row["outcome"] == record_exchange.ERROR:
                for error in row["errors"]:
                    column = f"{error['column']}: " if error["column"] else ""
                    click.echo(f"row {row['row']}: error: {column}{record_exchange.error_text(error)}")
            elif row.get("apply_error"):
                click.echo(f"row {row['row']}: skipped: {record_exchange.error_text(row['apply_error'])}")
            else:
                click.echo(f"row {row['row']}: {'ok' if dry_run else 'imported'}")
        click.echo(f"rows: {summary.total}, valid: {summary.valid}, errors: {summary.errors}"
                   + ("" if result is None else f", imported: {result.applied}, skipped: {result.skipped}")
                   + (" (dry run: nothing written)" if dry_run else f" (import {batch_id})"))

    @app.cli.group("stats")
    def stats_group():
        """统计分析: the rollup tables behind the dashboards."""

    @stats_group.command("rebuild")
    @with_appcontext
    def stats_rebuild_command():
        """Recompute every rollup (stat_day, stat_total, stat_group_month) from the facts."""
        import time

        from app.services import rollups

        started = time.perf_counter()
        counts = rollups.rebuild()
        db.session.commit()
        seconds = time.perf_counter() - started
        for table, rows in counts.items():
            click.echo(f"{table}: {rows} rows")
        click.echo(f"rebuilt in {seconds:.2f} s")

    @app.cli.group("regions")
    def regions_group():
        """行政区划: maintenance of the division tree."""

    @regions_group.command("move")
    @click.argument("code")
    @click.argument("new_parent_code")
    @click.option("--batch", type=click.IntRange(1, 100_000), default=5_000, show_default=True,
                  help="Rows per UPDATE and commit.")
    @with_appcontext
    def regions_move_command(code, new_parent_code, batch):
        """Move region CODE (and all below it) under NEW_PARENT_CODE: rewrite every stored
        path in batches, then rebuild the statistics rollups. It commits per batch, so
        other users see a half-moved tree meanwhile: best run in a quiet hour."""
        from app.services.errors import DomainError
        from app.services.regions import move_region

        try:
            result = move_region(code, new_parent_code, batch=batch)
        except DomainError as err:
            db.session.rollback()
            raise click.ClickException("; ".join(err.messages)) from None
        for column, rows in result.rows.items():
            if rows:
                click.echo(f"{column}: {rows} rows")
        click.echo(f"moved {result.old_path} -> {result.new_path}; statistics rebuilt")
