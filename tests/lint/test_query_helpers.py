"""Queries built by a project's own helpers (after round 11): a helper that takes the model as
a parameter (``model_query(context, models.Volume)``, OpenStack's pattern; ``self._get_query(
session, SqlRun)``, mlflow's) gives the caller's model, its unconditional steps and none of the
filters it applies only in a branch; a helper that pages the query it is handed keeps the page.
Also: a package linted by its own folder imports its models by a longer path than the folder
counts (``proj.db.models.Volume`` for ``db/models.py``), a key column equal to a conversion of
a value in hand (``_parse_id(experiment_id)``) is one owner's rows, and ``filter(*conditions)``
reads the conditions of the list literal it spreads."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Volume(Base):
    __tablename__ = "volumes"
    id = Column(Integer, primary_key=True)
    host = Column(String)
    experiment_id = Column(Integer)
    status = Column(String)
"""

API = """\
import sqlalchemy

from proj.db import models


def model_query(context, model, *args, **kwargs):
    query = context.session.query(model, *args)
    if kwargs.get("read_deleted") == "no":
        query = query.filter_by(deleted=False)
    if kwargs.get("project_only"):
        query = query.filter_by(project_id=context.project_id)
    return query


def _paginate(query, page):
    if page:
        query = query.offset((page - 1) * 50).limit(50)
    return query


def _parse_id(value):
    return int(value)


def volume_get_all(context):
    return model_query(context, models.Volume, read_deleted="no").all()  # line 26: every row


def volume_get_all_by_host(context, host):
    return model_query(context, models.Volume).filter_by(host=host).all()  # one host's


def volume_page(context, page):
    return _paginate(model_query(context, models.Volume), page).all()  # a page


def volumes_of_experiment(context, experiment_id):
    query = model_query(context, models.Volume)
    return query.filter(models.Volume.experiment_id == _parse_id(experiment_id)).all()


def volumes_in_state(context, experiment_id, status):
    conditions = [models.Volume.experiment_id == experiment_id, models.Volume.status == status]
    return model_query(context, models.Volume).filter(*conditions).all()


def volumes_with_status(context, status):
    conditions = [models.Volume.status == status]
    return model_query(context, models.Volume).filter(*conditions).all()  # line 49: a share
"""


def test_a_helper_that_takes_the_model_gives_the_callers_model(tmp_path: Path) -> None:
    package = tmp_path / "proj"
    (package / "db").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "db" / "__init__.py").write_text("", encoding="utf-8")
    (package / "db" / "models.py").write_text(MODELS, encoding="utf-8")
    (package / "db" / "api.py").write_text(API, encoding="utf-8")
    sizes = TableSizes(tables={"volumes": 400_000}, source="t")
    # Linted by the package's own folder: paths count from ``db``, imports say ``proj.db``.
    result = lint_paths([str(package)], LintConfig(sizes=sizes))
    found = {(Path(f.filename).name, f.row) for f in result.findings if f.code == "MB102"}
    assert found == {("api.py", 26), ("api.py", 49)}, found
    said = next(f for f in result.findings if f.row == 26).message
    assert "≈400k rows of `volumes`" in said
