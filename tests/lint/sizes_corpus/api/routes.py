from api.models import Event, audit
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

app = Flask(__name__)
session = Session()


@app.route("/events")
def events():
    return {"e": [e.id for e in session.query(Event).all()]}  # load


@app.route("/kinds")
def kinds():
    return {"k": session.query(Event).filter(Event.kind != "x").all()}  # load


@app.route("/scalars")
def scalars():
    return {"s": session.execute(select(Event)).scalars().all()}  # load


@app.route("/scalars2")
def scalars2():
    return {"s": session.scalars(select(Event).where(Event.kind == "a")).all()}  # load


@app.route("/audit")
def audit_rows():
    return {"a": session.execute(select(audit)).all()}  # load


@app.route("/raw")
def raw():
    sql = text("SELECT * FROM events e JOIN audit_log a ON a.id = e.id")
    return {"r": session.execute(sql).fetchall()}  # load


def dbapi(conn):
    cur = conn.cursor()
    cur.execute("SELECT id, kind FROM events WHERE kind <> 'x'")
    return cur.fetchall()  # load


def dbapi2(conn):
    sql = "SELECT id FROM events"
    cur = conn.cursor()
    cur.execute(sql)
    rows = cur.fetchall()  # load
    return rows
