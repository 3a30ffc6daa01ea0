from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()

TITLE_MAX = 200
AUTHOR_MAX = 200


class Book(db.Model):
    __tablename__ = "books"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(TITLE_MAX), nullable=False)
    author = db.Column(db.String(AUTHOR_MAX), nullable=False)
    year = db.Column(db.Integer, nullable=True)

    def to_dict(self):
        return {"id": self.id, "title": self.title, "author": self.author, "year": self.year}
