"""Django REST framework list endpoints that answer with every row of their queryset.

A ``ListAPIView``, ``ListCreateAPIView``, ``ModelViewSet`` or ``ReadOnlyModelViewSet`` (or any
view with ``ListModelMixin``) answers ``GET`` on its collection with its ``queryset``
serialised in one response: every row, unless a paginator cuts it to a page. DRF paginates
only when the view sets a ``pagination_class`` or the settings name a
``DEFAULT_PAGINATION_CLASS`` with a ``PAGE_SIZE``; its default is none. DRF's and
django-filter's filter backends (search, ordering, ``DjangoFilterBackend``) narrow the answer
only when the request names a filter; a backend of the project's may filter every request (by
its user, its permissions).

Judged only where every setting that decides it can be read, so as never to report a view
that pages some other way:

* the view's bases are DRF's own classes or classes of the same module (a base of the
  project's other modules, or of another library, may set a paginator);
* its ``queryset`` is a class attribute (no ``get_queryset`` or ``filter_queryset``, which
  usually keep the requesting user's or one parent's rows), and no method answers the list or
  pages in code (``list``, ``paginate_queryset``, ``get_paginated_response``, ``paginator``);
* its ``filter_backends`` (literal) are DRF's or django-filter's own, or it sets none and the
  settings name no ``DEFAULT_FILTER_BACKENDS`` of the project's;
* its ``pagination_class`` is ``None`` (no pages whatever the settings say), or it sets none
  and the project's settings install apps but name no ``DEFAULT_PAGINATION_CLASS`` with a
  ``PAGE_SIZE`` anywhere outside comments and tests (``lint/tables.py``); a project without
  settings (a reusable app) is not judged.

Like every whole-table load in request code, only a size makes it a finding
(``rules/_loads.py``): the queryset's table in the sizes file (``--sizes``, ``--db``) or
``large-models``; the share of it the queryset keeps is judged as any other load's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from membound.lint.context import ModuleContext

__all__ = ["UnpagedList", "unpaged_lists"]

#: DRF's views whose ``GET`` on the collection answers with the whole queryset.
_LISTING = frozenset(
    {"rest_framework.generics.ListAPIView", "rest_framework.generics.ListCreateAPIView",
     "rest_framework.viewsets.ModelViewSet", "rest_framework.viewsets.ReadOnlyModelViewSet",
     "rest_framework.mixins.ListModelMixin"}
)  # fmt: skip
#: Methods that decide in code what the list answers: its rows (``get_queryset``,
#: ``filter_queryset``, which often keep the requester's or one parent's rows) or its pages.
_DECIDING_METHODS = frozenset(
    {"list", "get_queryset", "filter_queryset", "paginate_queryset", "get_paginated_response",
     "paginator", "pagination_class"}
)  # fmt: skip


@dataclass(frozen=True)
class UnpagedList:
    """One list endpoint that answers with its whole queryset."""

    view: str
    queryset: ast.expr
    """The ``queryset = …`` value: the load, and where to report."""
    paged_off: bool
    """The view sets ``pagination_class = None``."""


#: Filter backends that narrow the answer only when the request names a filter.
_REQUESTED_FILTERS = ("rest_framework.filters.", "django_filters.")


@dataclass
class _View:
    """What a view class and its bases of the same module set."""

    lists: bool = False
    queryset: ast.expr | None = None
    pagination: ast.expr | None = None
    backends: ast.expr | None = None
    methods: frozenset[str] = frozenset()


def unpaged_lists(ctx: ModuleContext) -> Iterator[UnpagedList]:
    """Every DRF list endpoint of this module that answers with its whole queryset."""
    evidence = ctx.evidence
    if evidence is None or "rest_framework" not in ctx.imported_roots:
        return
    by_default = evidence.tables.api_pages_by_default
    classes = {node.name: node for node in ctx.tree.body if isinstance(node, ast.ClassDef)}
    for cls in classes.values():
        view = _view(ctx, cls, classes)
        if view is None or not view.lists or view.queryset is None:
            continue
        if view.methods & _DECIDING_METHODS:
            continue
        if view.backends is not None and not _requested_filters_only(ctx, view.backends):
            continue  # a backend of the project's may keep the requester's rows
        if view.backends is None and evidence.tables.api_filters_of_its_own:
            continue
        paged_off = _is_none(view.pagination) if view.pagination is not None else False
        if view.pagination is not None and not paged_off:
            continue  # a paginator of its own
        if not paged_off and by_default is not False:
            continue  # the settings page every list, or cannot be read
        yield UnpagedList(cls.name, view.queryset, paged_off)


def _view(
    ctx: ModuleContext, cls: ast.ClassDef, classes: dict[str, ast.ClassDef], depth: int = 0
) -> _View | None:
    """What ``cls`` sets with its bases (its own win); None when a base is neither DRF's nor
    a class of this module, or is not a view at all."""
    merged = _View()
    for base in reversed(cls.bases):  # the first base wins, as in Python's method order
        name = base.id if isinstance(base, ast.Name) else None
        if name is not None and name in classes and name != cls.name and depth < 8:
            inherited = _view(ctx, classes[name], classes, depth + 1)
            if inherited is None:
                return None
            merged.lists = merged.lists or inherited.lists
            merged.queryset = inherited.queryset or merged.queryset
            merged.pagination = inherited.pagination or merged.pagination
            merged.backends = inherited.backends or merged.backends
            merged.methods |= inherited.methods
            continue
        qualified = ctx.qualify(base) or ""
        if not qualified.startswith("rest_framework."):
            return None  # another library's or another module's: may page
        merged.lists = merged.lists or qualified in _LISTING
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            merged.methods |= {stmt.name}
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                if target.id == "queryset":
                    merged.queryset = stmt.value
                elif target.id == "pagination_class":
                    merged.pagination = stmt.value
                elif target.id == "filter_backends":
                    merged.backends = stmt.value
                elif target.id in _DECIDING_METHODS:
                    merged.methods |= {target.id}
    return merged


def _requested_filters_only(ctx: ModuleContext, backends: ast.expr) -> bool:
    """A literal list of DRF's or django-filter's own filter backends."""
    if not isinstance(backends, (ast.List, ast.Tuple)):
        return False
    return all((ctx.qualify(b) or "").startswith(_REQUESTED_FILTERS) for b in backends.elts)


def _is_none(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value is None
