import pytest

from books_api import create_app
from postgres import free_port


def health_of(url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    return create_app({"TESTING": True}).test_client().get("/health")


def test_ok_when_database_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_503_when_nothing_listens(postgres, monkeypatch):
    if postgres is None:
        pytest.skip("needs the throwaway cluster")
    response = health_of(postgres.url_with(port=free_port()), monkeypatch)
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_503_when_host_does_not_resolve(monkeypatch):
    response = health_of("postgresql+psycopg://u:p@books-db.invalid:5432/books", monkeypatch)
    assert response.status_code == 503


def test_503_on_wrong_password(postgres, monkeypatch):
    if postgres is None:
        pytest.skip("needs the throwaway cluster")
    response = health_of(postgres.url_with(password="x" * 32), monkeypatch)
    assert response.status_code == 503


def test_503_while_database_is_down_then_recovers(postgres, client):
    if postgres is None:
        pytest.skip("needs the throwaway cluster")
    assert client.get("/health").status_code == 200  # the pool now holds a live connection
    postgres.stop()
    try:
        assert client.get("/health").status_code == 503
        assert client.get("/health").status_code == 503
        response = client.get("/api/books")
        assert response.status_code == 503
        assert response.get_json() == {"error": "database unavailable"}
    finally:
        postgres.start()
    # pool_pre_ping replaces the dead connection without a restart of the app.
    assert client.get("/health").status_code == 200
    assert client.get("/api/books").status_code == 200


def test_missing_database_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL is not set"):
        create_app()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_plain_postgres_urls_use_psycopg3(monkeypatch, scheme):
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://u:p@db:5432/books")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/books"
