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
