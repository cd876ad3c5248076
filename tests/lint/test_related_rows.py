"""Keys taken from a related manager of one object in hand (``library.uploads.all()``,
``self.get_object().uploads``) are that object's rows: a query on ``pk__in`` them is bounded
by the object (after round 13, funkwhale's library statistics)."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Library(models.Model):
    name = models.TextField()


class Track(models.Model):
    title = models.TextField()


class Upload(models.Model):
    library = models.ForeignKey(Library, related_name="uploads", on_delete=models.CASCADE)
    track = models.ForeignKey(Track, on_delete=models.CASCADE)
"""

VIEWS = """\
from app.models import Library, Track


class LibraryStats:
    def get_object(self):
        return Library.objects.get(pk=self.kwargs["pk"])

    def stats(self):
        tracks = self.get_object().uploads.values_list("track", flat=True)
        return set(Track.objects.filter(pk__in=tracks).values_list("title", flat=True))

    def of(self, library):
        tracks = library.uploads.all().values_list("track", flat=True)
        return list(Track.objects.filter(pk__in=tracks))

    def of_a_filterset(self, filterset):
        tracks = filterset.qs.values_list("track", flat=True)
        return list(Track.objects.filter(pk__in=tracks))  # line 18: the filterset's rows

    def of_everyone(self):
        tracks = Library.objects.values_list("uploads__track", flat=True)
        return list(Track.objects.filter(pk__in=tracks))  # line 22: every library's
"""


def test_keys_of_one_objects_relation_bound_a_query(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (app / "views.py").write_text(VIEWS, encoding="utf-8")
    sizes = TableSizes(tables={"app_track": 550_000, "app_upload": 700_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert {f.row for f in result.findings if f.code == "MB101"} == {18, 22}
