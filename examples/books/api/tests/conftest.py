import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from postgres import TempPostgres

API_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def postgres():
    """A real Postgres; TEST_DATABASE_URL points at an existing one instead of starting a cluster."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    pg = TempPostgres()
    try:
        yield pg.init()
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def database_url(postgres):
    return os.environ.get("TEST_DATABASE_URL") or postgres.url


def flask_cli(database_url, *args):
    """Run the Flask CLI the way the migrations Job does: FLASK_APP from the image, DATABASE_URL from the Secret."""
    env = dict(os.environ, FLASK_APP="wsgi", DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=API_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def migrated(database_url):
    result = flask_cli(database_url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return database_url


@pytest.fixture
def app(migrated, monkeypatch):
    from books_api import create_app

    monkeypatch.setenv("DATABASE_URL", migrated)
    app = create_app({"TESTING": True})
    yield app
    with app.app_context():
        from books_api.models import db

        db.session.execute(text("TRUNCATE books RESTART IDENTITY"))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()
