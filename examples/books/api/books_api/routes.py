from flask import Blueprint, abort, jsonify, request, url_for
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .models import Book, db
from .validation import ValidationError, validate_book

bp = Blueprint("books", __name__)


@bp.errorhandler(ValidationError)
def validation_error(err):
    body = {"error": err.message}
    if err.field:
        body["field"] = err.field
    return jsonify(body), err.status


@bp.errorhandler(OperationalError)
def database_unavailable(err):
    # The database is down or unreachable: a retryable 503, not an opaque 500.
    db.session.rollback()
    return jsonify(error="database unavailable"), 503


def json_body():
    if not request.is_json:
        raise ValidationError("request body must be JSON (Content-Type: application/json)", status=415)
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationError("request body is not valid JSON")
    return data


# ids are Postgres integers; a larger number can only be a missing book, not a database error.
ID_MAX = 2**31 - 1


def get_book_or_404(book_id):
    book = db.session.get(Book, book_id) if book_id <= ID_MAX else None
    if book is None:
        abort(404, description=f"book {book_id} not found")
    return book


@bp.get("/health")
def health():
    # Probed by Kubernetes: healthy only when the database answers.
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        db.session.rollback()
        return jsonify(status="unavailable", error=type(err).__name__), 503
    return jsonify(status="ok")


@bp.get("/api/books")
def list_books():
    books = db.session.execute(db.select(Book).order_by(Book.id)).scalars()
    return jsonify([book.to_dict() for book in books])


@bp.post("/api/books")
def create_book():
    book = Book(**validate_book(json_body()))
    db.session.add(book)
    db.session.commit()
    response = jsonify(book.to_dict())
    response.headers["Location"] = url_for("books.get_book", book_id=book.id)
    return response, 201


@bp.get("/api/books/<int:book_id>")
def get_book(book_id):
    return jsonify(get_book_or_404(book_id).to_dict())


@bp.put("/api/books/<int:book_id>")
def replace_book(book_id):
    book = get_book_or_404(book_id)
    for field, value in validate_book(json_body()).items():
        setattr(book, field, value)
    db.session.commit()
    return jsonify(book.to_dict())


@bp.delete("/api/books/<int:book_id>")
def delete_book(book_id):
    db.session.delete(get_book_or_404(book_id))
    db.session.commit()
    return "", 204
