"""The schema comes from Alembic alone, and it matches the models."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.extensions import db


def test_models_and_migrations_agree(app):
    """Autogenerate finds no difference between the migrated database and the models."""
    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, db.metadata) == []


def test_schema_has_fab_and_domain_tables(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    expected = {"ab_user", "ab_role", "alembic_version", "region", "volunteer", "volunteer_group",
                "membership", "project", "position", "enrollment", "hour_code", "service_record",
                "honor", "training", "evaluation", "certificate", "transfer_request",
                "help_request", "complaint", "audit_event", "volunteer_number_counter",
                "region_binding", "group_admin", "holiday"}
    assert expected <= tables


@pytest.mark.postgres
def test_path_columns_use_byte_collation_on_postgres(app):
    """A locale collation would break the region_path range predicate."""
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE column_name IN ('path', 'region_path', 'group_path') AND table_schema = 'public'"
        )).all()
    assert len(rows) >= 15
    assert {r.collation_name for r in rows} == {"C"}, rows


@pytest.mark.postgres
def test_range_predicate_uses_the_index_on_postgres(app):
    with app.app_context():
        db.session.execute(text("SET enable_seqscan = off"))
        plan = db.session.execute(text(
            "EXPLAIN SELECT id FROM volunteer WHERE region_path >= '410000/410200/' "
            "AND region_path < '410000/4102000'")).scalars().all()
    assert any("ix_volunteer_region_path" in line for line in plan), plan


def _migration(name: str):
    """A revision module of migrations/versions, by its file name."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, markers", [
    ("8e1f4c2a9b71_statistics_prefecture_rows.py",
     tuple(f"'{m}@pref'" for m in ("vol_new", "minutes", "volunteers", "vol_gender", "vol_birth", "vol_star",
                                    "groups"))),
    ("46a165608fd4_statistics_project_rows.py", ("'proj_started'", "'proj_closed'")),
    ("d41c7a0e5b2f_statistics_community_coverage.py", ("'community_groups'", "'covered'", "'covered@pref'")),
])
def test_rollup_fill_migrations__write_what_a_rebuild_writes(app, name, markers):
    """A migration that adds rollup rows (the prefecture rows; the projects' days of status
    change) fills a database that lacks them with the same rows as ``rollups.rebuild``;
    its downgrade takes them away again."""
    from alembic.operations import Operations
    from sqlalchemy import func, select

    from app.models import StatDay, StatMonth, StatTotal
    from app.services import rollups

    def theirs(snapshot):
        return [row for rows in snapshot.values() for row in rows if any(m in repr(row) for m in markers)]

    from tests.integration._hours_helpers import acting

    from app.models import Region, VolunteerGroup
    from app.services import groups

    module = _migration(name)
    with acting(app, "admin"):  # the demo's pending groups, moved to a community and approved: a covered one
        pending = list(db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.status == "pending")))
        community = db.session.scalar(select(Region).where(Region.level == Region.COMMUNITY).order_by(Region.id))
        for group in pending:
            group.region_id, group.region_path = community.id, community.path
        groups.review_groups(pending, "approve")
        db.session.commit()
    with app.app_context():
        rollups.rebuild()
        db.session.commit()
        rebuilt = rollups.snapshot()
        assert len(theirs(rebuilt)) >= 3
        db.session.rollback()  # SQLite: the migration's connection needs the write lock
        with db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            module.downgrade()
        assert theirs(rollups.snapshot()) == []
        db.session.rollback()
        with db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            module.upgrade()
        assert rollups.snapshot() == rebuilt
        for model in (StatDay, StatMonth, StatTotal):  # and no row of value 0 either
            assert db.session.scalar(select(func.count()).select_from(model)) == len(rebuilt[model.__tablename__])
