"""A Django REST framework list endpoint answers with its whole queryset unless a paginator
cuts it to pages (issue 38): with sizes that say the table is big, a list view that sets no
``pagination_class`` in a project whose settings name no ``DEFAULT_PAGINATION_CLASS``, or one
that sets ``pagination_class = None``, is a finding; a view that pages, keeps the requester's
rows in ``get_queryset``, answers one row, or has a base the rules cannot read is none."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, LintResult, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Article(models.Model):
    title = models.TextField()


class Tag(models.Model):
    name = models.TextField(unique=True)
"""

API = """\
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters, generics, mixins, pagination, viewsets

from app.bases import IsOwnerFilterBackend, ProjectListView
from app.models import Article, Tag


class ArticleList(generics.ListAPIView):
    queryset = Article.objects.all()  # line 9


class TagList(generics.ListAPIView):
    queryset = Tag.objects.all()  # a small table


class PagedArticles(generics.ListCreateAPIView):
    queryset = Article.objects.all()
    pagination_class = pagination.PageNumberPagination


class MyArticles(viewsets.ModelViewSet):
    queryset = Article.objects.all()

    def get_queryset(self):
        return self.queryset.filter(owner=self.request.user)


class OneArticle(generics.RetrieveUpdateAPIView):
    queryset = Article.objects.all()  # one row per request


class ProjectArticles(ProjectListView, generics.ListAPIView):  # a base of the project's: may page
    queryset = Article.objects.all()


class Unpaged(mixins.ListModelMixin, viewsets.GenericViewSet):
    pagination_class = None


class EveryArticle(Unpaged):
    queryset = Article.objects.order_by("title")  # line 41


class CustomList(viewsets.ReadOnlyModelViewSet):
    queryset = Article.objects.all()

    def list(self, request):
        return super().list(request)


class ProjectMembers(generics.ListAPIView):
    queryset = Article.objects.all()

    def filter_queryset(self, queryset):
        return queryset.filter(project=self.kwargs["project_id"])

class OwnedArticles(generics.ListAPIView):
    queryset = Article.objects.all()
    filter_backends = [IsOwnerFilterBackend]  # a backend of the project's: every request


class SearchedArticles(generics.ListAPIView):
    queryset = Article.objects.all()  # line 63: search filters only when asked
    filter_backends = [filters.SearchFilter, DjangoFilterBackend]


class Paged:
    pagination_class = pagination.LimitOffsetPagination


class FirstBaseWins(Paged, Unpaged):
    queryset = Article.objects.all()  # pages: the first base's paginator
"""

BIG = {"app_article": 500_000, "app_tag": 40}
SETTINGS = 'INSTALLED_APPS = ["rest_framework", "app"]\n'
PAGED = SETTINGS + (
    "REST_FRAMEWORK = {\n"
    '    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",\n'
    '    "PAGE_SIZE": 50,\n'
    "}\n"
)
#: A paginator without a page size answers whole (DRF's paginators need ``PAGE_SIZE``).
NO_PAGE_SIZE = SETTINGS + (
    "REST_FRAMEWORK = {\n"
    '    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",\n'
    "}\n"
)
#: Filter backends of the project's for every view.
OWN_FILTERS = SETTINGS + (
    'REST_FRAMEWORK = {"DEFAULT_FILTER_BACKENDS": ["app.bases.IsOwnerFilterBackend"]}\n'
)


def _result(tmp_path: Path, settings: str | None, sizes: dict[str, int] | None = BIG) -> LintResult:
    files = {
        "app/__init__.py": "",
        "app/models.py": MODELS,
        "app/api.py": API,
        "app/bases.py": "class ProjectListView: ...\nclass IsOwnerFilterBackend: ...\n",
    }
    if settings is not None:
        files["site/settings.py"] = settings
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    table_sizes = TableSizes(tables=sizes, source="t") if sizes is not None else None
    return lint_paths([str(tmp_path)], LintConfig(sizes=table_sizes))


def _rows(result: LintResult) -> dict[int, str]:
    return {f.row: f.message for f in result.findings if f.code == "MB101"}


def test_an_unpaged_list_endpoint_answers_with_a_big_table(tmp_path: Path) -> None:
    by_row = _rows(_result(tmp_path, SETTINGS))
    assert set(by_row) == {9, 41, 63}, by_row
    assert "list endpoint of `ArticleList`" in by_row[9]
    assert "no `DEFAULT_PAGINATION_CLASS`" in by_row[9]
    assert "≈500k rows of `app_article` (t)" in by_row[9]
    assert "`pagination_class = None`" in by_row[41]


def test_default_pages_leave_only_a_view_that_switches_them_off(tmp_path: Path) -> None:
    assert set(_rows(_result(tmp_path, PAGED))) == {41}
    # without a page size the default paginator answers whole
    assert set(_rows(_result(tmp_path / "no-size", NO_PAGE_SIZE))) == {9, 41, 63}


def test_the_projects_own_default_filters_may_keep_the_requesters_rows(tmp_path: Path) -> None:
    # only a view that names DRF's own backends is still judged
    assert set(_rows(_result(tmp_path, OWN_FILTERS))) == {63}


def test_a_project_without_settings_is_judged_only_where_a_view_says_so(tmp_path: Path) -> None:
    """A reusable app's list views page as the project that installs it says: unknown here."""
    assert set(_rows(_result(tmp_path, None))) == {41}


def test_small_tables_and_no_sizes_say_nothing(tmp_path: Path) -> None:
    small = _result(tmp_path / "small", SETTINGS, {"app_article": 300, "app_tag": 40})
    assert _rows(small) == {}
    none = _result(tmp_path / "none", SETTINGS, None)
    assert _rows(none) == {}
