"""Expression chains: ``User.objects.filter(a=1)[:10]`` as its links, root first, and
``a.b.c`` as a dotted name; the vocabulary the rules and
:class:`~membound.lint.context.ModuleContext` share to read a query off one expression."""

from __future__ import annotations

import ast
from dataclasses import dataclass

__all__ = ["Link", "dotted", "links"]


@dataclass(frozen=True)
class Link:
    """One step of an expression chain such as ``User.objects.filter(a=1)[:10]``.

    ``kind`` is ``"name"`` (the root name), ``"attr"`` (attribute access), ``"method"`` (a call
    of an attribute: ``.filter(...)``), ``"func"`` (a call of a bare name: ``list(...)``),
    ``"call"`` (a call of anything else), ``"sub"`` (subscript or slice) or ``"other"`` (any
    other root).
    """

    kind: str
    """The step's kind (see the class docstring)."""
    name: str
    """The attribute, method or function name; empty for other kinds."""
    node: ast.AST
    """The AST node of this step (the ``Call`` for calls)."""


def links(expr: ast.AST) -> list[Link]:
    """Split an expression chain into its steps, root first.

    Args:
        expr: The outermost expression, e.g. the iterable of a ``for``.

    Returns:
        The steps from the root (a name or other expression) to ``expr`` itself.
    """
    out: list[Link] = []
    node: ast.AST = expr
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                out.append(Link("method", func.attr, node))
                node = func.value
                continue
            if isinstance(func, ast.Name):
                out.append(Link("func", func.id, node))
                break
            out.append(Link("call", "", node))
            node = func
            continue
        if isinstance(node, ast.Attribute):
            out.append(Link("attr", node.attr, node))
            node = node.value
            continue
        if isinstance(node, ast.Subscript):
            out.append(Link("sub", "", node))
            node = node.value
            continue
        if isinstance(node, ast.Await):
            node = node.value
            continue
        if isinstance(node, ast.Name):
            out.append(Link("name", node.id, node))
        else:
            out.append(Link("other", "", node))
        break
    out.reverse()
    return out


def dotted(expr: ast.AST) -> str | None:
    """Return ``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    node = expr
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
