"""Books API: a small Flask + SQLAlchemy service used as the appstack-operator sample."""

import os

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .models import db, migrate

__all__ = ["create_app"]


def database_url_from_env():
    """The operator injects DATABASE_URL as postgresql+psycopg://user:pass@host:5432/db."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise RuntimeError("DATABASE_URL is not set (expected postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)")
    # Only the psycopg 3 driver is installed: accept the common spellings too.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_app(config=None):
    """Build the app; `config` overrides settings (tests pass TESTING, or a database URI)."""
    config = config or {}
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=config.get("SQLALCHEMY_DATABASE_URI") or database_url_from_env(),
        SQLALCHEMY_ENGINE_OPTIONS={
            # Drop connections that died with a database restart instead of failing a request.
            "pool_pre_ping": True,
            # Fail fast when the database host is unreachable, so /health answers within a probe timeout.
            "connect_args": {"connect_timeout": int(os.environ.get("DB_CONNECT_TIMEOUT", "3"))},
        },
    )
    app.config.update(config)

    db.init_app(app)
    # The migrations directory sits next to this package, whatever the working directory.
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))

    from .routes import bp

    app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def http_error_as_json(err):
        # Every error, including Flask's own 404/405/415, is JSON for API clients.
        return jsonify(error=err.description), err.code

    return app
