import pytest

BOOK = {"title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", "year": 1969}


def create(client, **overrides):
    response = client.post("/api/books", json={**BOOK, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_list_starts_empty(client):
    response = client.get("/api/books")
    assert response.status_code == 200
    assert response.get_json() == []


def test_create_then_get(client):
    response = client.post("/api/books", json=BOOK)
    assert response.status_code == 201
    book = response.get_json()
    assert book == {"id": book["id"], **BOOK}
    assert response.headers["Location"].endswith(f"/api/books/{book['id']}")
    assert client.get(f"/api/books/{book['id']}").get_json() == book


def test_list_is_ordered_by_id(client):
    ids = [create(client, title=f"Book {n}")["id"] for n in range(3)]
    assert [b["id"] for b in client.get("/api/books").get_json()] == ids


def test_year_is_optional_and_text_is_trimmed(client):
    book = create(client, title="  Beowulf ", author=" Anonymous", year=None)
    assert (book["title"], book["author"], book["year"]) == ("Beowulf", "Anonymous", None)
    book = client.post("/api/books", json={"title": "T", "author": "A"}).get_json()
    assert book["year"] is None


def test_put_replaces_every_field(client):
    book = create(client)
    response = client.put(f"/api/books/{book['id']}", json={"id": book["id"], "title": "New", "author": "Someone"})
    assert response.status_code == 200
    assert response.get_json() == {"id": book["id"], "title": "New", "author": "Someone", "year": None}
    assert client.get(f"/api/books/{book['id']}").get_json()["title"] == "New"


def test_delete(client):
    book = create(client)
    assert client.delete(f"/api/books/{book['id']}").status_code == 204
    assert client.get(f"/api/books/{book['id']}").status_code == 404
    assert client.get("/api/books").get_json() == []


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("book_id", [999, 2**40])
def test_missing_id_is_404(client, method, book_id):
    response = getattr(client, method)(f"/api/books/{book_id}", json=BOOK)
    assert response.status_code == 404
    assert response.get_json() == {"error": f"book {book_id} not found"}


def test_unknown_route_and_method_are_json(client):
    assert client.get("/api/nope").get_json()["error"]
    response = client.patch("/api/books")
    assert response.status_code == 405
    assert response.get_json()["error"]


@pytest.mark.parametrize(
    "payload, field, message",
    [
        ({"author": "A"}, "title", "title is required"),
        ({"title": None, "author": "A"}, "title", "title is required"),
        ({"title": "", "author": "A"}, "title", "title must not be empty"),
        ({"title": "   ", "author": "A"}, "title", "title must not be empty"),
        ({"title": 42, "author": "A"}, "title", "title must be a string"),
        ({"title": "x" * 201, "author": "A"}, "title", "title must be at most 200 characters"),
        ({"title": "T"}, "author", "author is required"),
        ({"title": "T", "author": ["A"]}, "author", "author must be a string"),
        ({"title": "T", "author": "y" * 201}, "author", "author must be at most 200 characters"),
        ({"title": "T", "author": "A", "year": "1999"}, "year", "year must be an integer"),
        ({"title": "T", "author": "A", "year": 1999.5}, "year", "year must be an integer"),
        ({"title": "T", "author": "A", "year": True}, "year", "year must be an integer"),
        ({"title": "T", "author": "A", "year": 2101}, "year", "year must be between -3000 and 2100"),
        ({"title": "T", "author": "A", "year": -3001}, "year", "year must be between -3000 and 2100"),
        ({"title": "T", "author": "A", "isbn": "123"}, "isbn", "unknown field isbn"),
    ],
)
def test_validation_names_the_field(client, payload, field, message):
    for response in (client.post("/api/books", json=payload),
                     client.put(f"/api/books/{create(client)['id']}", json=payload)):
        assert response.status_code == 400
        assert response.get_json() == {"error": message, "field": field}


def test_limits_are_inclusive(client):
    book = create(client, title="x" * 200, author="y" * 200, year=2100)
    assert len(book["title"]) == 200
    assert create(client, year=-3000)["year"] == -3000


def test_failed_put_changes_nothing(client):
    book = create(client)
    client.put(f"/api/books/{book['id']}", json={"title": "", "author": "A"})
    assert client.get(f"/api/books/{book['id']}").get_json() == book


@pytest.mark.parametrize("method", ["post", "put"])
def test_body_must_be_json(client, method):
    url = "/api/books" if method == "post" else f"/api/books/{create(client)['id']}"
    send = getattr(client, method)

    response = send(url, data="title=T&author=A", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "JSON" in response.get_json()["error"]

    response = send(url, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "request body is not valid JSON"}

    response = send(url, json=["a", "list"])
    assert response.status_code == 400
    assert response.get_json() == {"error": "request body must be a JSON object"}
    # Nothing was created or changed by the rejected requests.
    books = client.get("/api/books").get_json()
    assert len(books) == (0 if method == "post" else 1)
    assert all(b["title"] == BOOK["title"] for b in books)
