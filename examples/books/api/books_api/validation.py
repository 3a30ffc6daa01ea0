"""Validation of book payloads; errors name the offending field."""

from .models import AUTHOR_MAX, TITLE_MAX

# Wide enough for ancient texts and near-future publications, narrow enough to catch typos.
YEAR_MIN = -3000
YEAR_MAX = 2100

FIELDS = {"title", "author", "year"}
READ_ONLY = {"id"}


class ValidationError(Exception):
    def __init__(self, message, field=None, status=400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def _required_text(data, field, limit):
    if field not in data or data[field] is None:
        raise ValidationError(f"{field} is required", field)
    value = data[field]
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field)
    value = value.strip()
    if not value:
        raise ValidationError(f"{field} must not be empty", field)
    if len(value) > limit:
        raise ValidationError(f"{field} must be at most {limit} characters", field)
    return value


def _optional_year(data):
    value = data.get("year")
    if value is None:
        return None
    # bool is a subclass of int in Python; true/false is never a year.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("year must be an integer", "year")
    if not YEAR_MIN <= value <= YEAR_MAX:
        raise ValidationError(f"year must be between {YEAR_MIN} and {YEAR_MAX}", "year")
    return value


def validate_book(data):
    """Return the cleaned fields of a full book (POST and PUT replace every field)."""
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    unknown = sorted(set(data) - FIELDS - READ_ONLY)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]}", unknown[0])
    return {
        "title": _required_text(data, "title", TITLE_MAX),
        "author": _required_text(data, "author", AUTHOR_MAX),
        "year": _optional_year(data),
    }
