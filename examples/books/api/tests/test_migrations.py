from sqlalchemy import create_engine, inspect

from conftest import flask_cli


def columns(url):
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        if not inspector.has_table("books"):
            return None
        return {c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns("books")}
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema(migrated):
    assert columns(migrated) == {
        "id": ("INTEGER", False),
        "title": ("VARCHAR(200)", False),
        "author": ("VARCHAR(200)", False),
        "year": ("INTEGER", True),
    }


def test_models_and_migrations_agree(migrated):
    # Fails when a model changed without a new migration.
    result = flask_cli(migrated, "db", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_upgrade_is_idempotent_and_downgrade_works(migrated):
    assert flask_cli(migrated, "db", "upgrade").returncode == 0
    assert flask_cli(migrated, "db", "downgrade", "base").returncode == 0
    assert columns(migrated) is None
    assert flask_cli(migrated, "db", "upgrade").returncode == 0
    assert columns(migrated) is not None
