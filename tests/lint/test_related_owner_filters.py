"""SQLAlchemy filters that keep one owner's rows through a relationship (after round 14,
indico's per-event and per-user queries): ``X.rel.has(event=event)``,
``X.links.any(Link.person.has(user=user))``, ``filter_by(registration=reg)``, and identifying
values under another name (``User.all_emails.in_(emails)``). A relationship criterion with no
owner in it, or one only some rows meet, is no bound."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from app.db import db


class Block(db.Model):
    __tablename__ = "blocks"
    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id"))
    session = db.relationship("Session")
    links = db.relationship("Link")


class Link(db.Model):
    __tablename__ = "links"
    id = db.Column(db.Integer, primary_key=True)
    person = db.relationship("Person")


class Receipt(db.Model):
    __tablename__ = "receipts"
    id = db.Column(db.Integer, primary_key=True)
    registration_id = db.Column(db.Integer, db.ForeignKey("registrations.id"))
    registration = db.relationship("Registration")


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    all_emails = db.Column(db.String)
    country_code = db.Column(db.String)


class Feedback(db.Model):
    __tablename__ = "feedbacks"
    id = db.Column(db.Integer, primary_key=True)
    meta = db.Column(db.JSON)
"""

VIEWS = """\
from sqlmodel import col

from app.db import db
from app.models import Block, Feedback, Link, Receipt, User
from app.settings import settings


def of_an_event(event):
    return Block.query.filter(Block.session.has(event=event, is_deleted=False)).all()


def of_a_person(user):
    return Block.query.filter(Block.links.any(Link.person.has(user=user))).all()


def of_a_registration(reg):
    return [r for r in Receipt.query.filter_by(registration=reg)]


def of_emails(emails):
    return User.query.filter(User.all_emails.in_(list(emails))).all()


def of_an_email(email):
    return User.query.filter(User.all_emails == email).all()


def undeleted():
    return Block.query.filter(Block.session.has(is_deleted=False)).all()  # line 29


def of_an_event_or_public(event):
    return Block.query.filter(
        Block.session.has(db.or_(Session.event == event, Session.public))  # line 33
    ).all()


def of_a_login(username):
    return Block.query.filter(Block.session.has(name=username)).all()


def of_a_user_two_ways(user):
    return Block.query.filter(
        db.or_(Block.owner == user, Block.links.any(Link.person.has(user=user)))
    ).all()


def sharing_one(registration):
    return Receipt.query.filter_by(registrations=registration).all()  # line 49: many-to-many


def opted_in(flag, day, send_email, cat):
    a = User.query.filter_by(send_email=flag).all()  # line 55: a flag about e-mail
    b = User.query.filter(User.last_login == day).all()  # line 56: a date
    c = User.query.filter_by(newsletter=send_email).all()  # line 55: a value named for a flag
    d = Receipt.query.filter_by(categories=cat).all()  # line 56: a many-to-many cut short
    return a, b, c, d


def site_wide(username, proc):
    a = Block.query.filter(Block.sender == settings.DEFAULT_FROM_EMAIL).all()  # line 61
    b = Block.query.filter(Block.title == username).all()  # line 62: a title is no name
    c = Block.query.filter_by(process=proc).all()  # a singular cut short: one process's
    return a, b, c


def of_a_country(country):
    return User.query.filter(User.country_code == country).all()  # line 68


def of_a_chat(chat_id, knowledge_id, status):
    # a key of a JSON document compared to a value in hand reads as a column of that name
    a = Feedback.query.filter(Feedback.meta["chat_id"].as_string() == chat_id).all()
    b = Feedback.query.filter(Feedback.meta["data"]["knowledge_id"].astext == knowledge_id).all()
    c = Feedback.query.filter(Feedback.meta["status"].as_string() == status).all()  # line 75
    return a, b, c


def through_sqlmodel(feedback_ids, session_id):
    # SQLModel's ``col(X.c)`` is the column ``X.c``: ids in hand, one session's blocks
    a = Feedback.query.filter(col(Feedback.id).in_(feedback_ids)).all()
    b = Block.query.filter(col(Block.session_id) == session_id).all()
    return a, b
"""

SIZES = {
    "blocks": 70_000,
    "links": 800_000,
    "receipts": 25_000,
    "users": 65_000,
    "feedbacks": 180_000,
}


def test_rows_related_to_one_owner_in_hand_are_bounded(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "db.py").write_text("db = None\n", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (app / "views.py").write_text(VIEWS, encoding="utf-8")
    sizes = TableSizes(tables=SIZES, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    rows = sorted(f.row for f in result.findings if f.filename.endswith("views.py"))
    assert rows == [29, 33, 49, 53, 54, 55, 56, 61, 62, 68, 75], [
        (f.row, f.message[:60]) for f in result.findings
    ]
