"""The children of a syntax-tree node, found faster than ``ast.iter_child_nodes``.

Every file a lint run reads is walked twice (the project's call graph, then the rules' module
facts), and the walks were most of the lint time: ``ast.iter_child_nodes`` looks into every
field of every node, including identifiers, numbers and the ``Load``/``Store`` and operator
singletons, which are a third of what it yields. Here each node type's fields that can hold a
child are found once, and context and operator singletons are never visited.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = ["LEAF_SINGLETONS", "child_fields", "children"]

#: Fields that never hold a child node, by name (an identifier, a number, a flag, a context or
#: operator singleton); ``value`` of a ``Constant`` and ``name`` of the definitions are strings too.
_NOT_CHILDREN = frozenset(
    {"id", "attr", "ctx", "op", "kind", "type_comment", "arg", "asname", "module", "level"}
    | {"is_async", "conversion", "n", "s"}
)
_STRING_NAMES = frozenset({"FunctionDef", "AsyncFunctionDef", "ClassDef", "ExceptHandler", "alias"})
_STRING_NAMES |= {"TypeVar", "ParamSpec", "TypeVarTuple", "MatchAs", "MatchStar", "keyword"}

#: Load/Store contexts and operators: shared singletons, not part of the tree's shape.
LEAF_SINGLETONS = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)

#: node type → its fields that may hold children, last first.
_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(kind: type) -> tuple[str, ...]:
    """The fields of node type ``kind`` that may hold child nodes, in reverse order (a walk with
    a stack pushes them so, to pop them in source order). Leaves such as ``Name`` and
    ``Constant`` (half of all nodes) have none."""
    fields = _FIELDS.get(kind)
    if fields is None:
        found = [f for f in getattr(kind, "_fields", ()) if f not in _NOT_CHILDREN]
        if kind.__name__ == "Constant":
            found = [f for f in found if f != "value"]
        if kind.__name__ in _STRING_NAMES:
            found = [f for f in found if f != "name"]
        fields = _FIELDS[kind] = tuple(reversed(found))
    return fields


def children(node: ast.AST) -> Iterator[ast.AST]:
    """The child nodes of ``node`` in source order, as ``ast.iter_child_nodes`` gives them, less
    the context and operator singletons."""
    for field in reversed(child_fields(type(node))):
        value = getattr(node, field, None)
        if type(value) is list:
            for child in value:
                if isinstance(child, ast.AST) and not isinstance(child, LEAF_SINGLETONS):
                    yield child
        elif isinstance(value, ast.AST) and not isinstance(value, LEAF_SINGLETONS):
            yield value
