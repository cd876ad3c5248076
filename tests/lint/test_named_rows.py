"""A filter that fixes a column to one value named for a row of the queried model keeps that
value's rows (after round 15, geonode's keyword facets and a dataset looked up by its name):
the model's name for its naming column (``Keyword.objects.filter(name__iexact=keyword)``), or
the model's name and an identifying word for any column that is no shared attribute
(``Dataset.objects.filter(alternate=dataset_name)``), where the column comes from a base the
rules cannot read (django-taggit's tag name) and so may be unique. A value
named for something else, a column that names nothing, a shared attribute, or a column the
model itself declares without ``unique`` (a metric's name on every sample) keeps a share."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models
from taggit.models import TagBase
from vendor.models import Layer


class HierarchicalKeyword(TagBase):  # its name is django-taggit's
    description = models.TextField()


class Dataset(Layer):  # its alternate is the vendor's
    state = models.CharField(max_length=20)
    owner_name = models.CharField(max_length=100)


class Metric(models.Model):
    name = models.CharField(max_length=100)  # one name on every sample
"""

VIEWS = """\
from app.models import Dataset, HierarchicalKeyword, Metric


def facets(request, keywords, dataset_name, dataset_code, keyword, metric):
    for keyword in keywords:
        kws = list(HierarchicalKeyword.objects.filter(name__iexact=keyword))
    datasets = list(Dataset.objects.filter(alternate=dataset_name))
    shared = list(Dataset.objects.filter(state=dataset_code))  # line 8: a shared attribute
    other = list(Dataset.objects.filter(owner_name=keyword))  # line 9: named for a keyword
    text = list(HierarchicalKeyword.objects.filter(description=keyword))  # line 10: no name
    samples = list(Metric.objects.filter(name=metric))  # line 11: declared, not unique
    return kws, datasets, shared, other, text, samples
"""

ALCHEMY = """\
from sqlalchemy import Column, Integer, String, select
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Project(Base):
    __tablename__ = "projects"
    id = Column(Integer, primary_key=True)
    path = Column(String)
    kind = Column(String)


def one(session, project_name, project_kind):
    a = session.execute(select(Project).where(Project.path == project_name)).scalars().all()
    b = session.execute(select(Project).where(Project.kind == project_kind)).scalars().all()
    return a, b
"""

SIZES = {
    "app_hierarchicalkeyword": 14_000,
    "app_dataset": 22_000,
    "app_metric": 50_000_000,
    "projects": 90_000,
}


def test_a_value_named_for_one_row_of_the_model_keeps_its_rows(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for name, text in {
        "__init__.py": "",
        "models.py": MODELS,
        "views.py": VIEWS,
        "store.py": ALCHEMY,
    }.items():
        (app / name).write_text(text, encoding="utf-8")
    sizes = TableSizes(tables=SIZES, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    rows = sorted((Path(f.filename).name, f.row) for f in result.findings)
    expected = [("store.py", 15), ("store.py", 16)]  # both columns declared, neither unique
    expected += [("views.py", 8), ("views.py", 9), ("views.py", 10), ("views.py", 11)]
    assert rows == expected, [(f.row, f.message[:70]) for f in result.findings]
