"""WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP=wsgi for `flask db upgrade`."""

from books_api import create_app

app = create_app()
