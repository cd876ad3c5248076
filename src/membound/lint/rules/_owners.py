"""Bounds that come from the code around a query: the rows of one owner (a filter on a foreign
key to an object in hand) and primary keys in a list in hand. Conservative, like every shared
predicate: when a value cannot be followed, it is no bound."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from membound.lint.context import ModuleContext
from membound.lint.expression_chains import Link

__all__ = [
    "conjuncts",
    "equalities",
    "key_in_list",
    "last_name",
    "memberships",
    "names_a_row",
    "owner_filter",
    "owners_query",
    "privileged_only",
    "shared_attribute",
]


#: Django lookups: a keyword ending in one of these compares, it does not follow a relation.
_LOOKUPS = frozenset(
    {
        "exact", "iexact", "contains", "icontains", "in", "gt", "gte", "lt", "lte",
        "startswith", "istartswith", "endswith", "iendswith", "range", "date", "year",
        "iso_year", "month", "day", "week", "week_day", "iso_week_day", "quarter", "time",
        "hour", "minute", "second", "isnull", "regex", "iregex", "search", "contained_by",
        "overlap", "has_key", "has_keys", "has_any_keys", "len", "trigram_similar", "unaccent",
    }
)  # fmt: skip


#: Keyword or column names that name an owner: rows filtered to one of these belong to one owner.
_OWNERS = frozenset(
    {
        "user", "owner", "author", "creator", "account", "customer", "organization",
        "organisation", "organiser", "organizer", "tenant", "team", "project", "event",
        "parent", "member", "person", "profile", "group", "workspace", "company", "site",
        "object", "content_object", "instance",
    }
)  # fmt: skip


_KEY_NAMES = frozenset({"id", "pk", "uuid", "uid", "key"})
#: Columns whose value identifies a row, a person or a device (an e-mail, a short-link code, a
#: SKU, a serial number, an IP or MAC address, a host name):
#: the rows with one such value in hand are one or a few.
_IDENTITY = frozenset(
    {"email", "username", "slug", "code", "token", "sku", "upc", "isbn", "ean", "hash",
     "checksum", "fingerprint", "shortcode", "handle", "login", "serial", "serial_number",
     "sn", "barcode", "ip", "ip_address", "mac", "mac_address", "hostname", "fqdn"}
)  # fmt: skip
#: Names of the object a method or a handler works on: a relation filtered to it selects that
#: object's rows.
_THE_OBJECT = frozenset({"self", "obj", "instance", "object", "parent", "owner"})


def _bind_name(expr: ast.AST) -> str | None:
    """``x`` of ``bindparam("x")`` (``sa.bindparam``): a value each execution supplies."""
    if (
        isinstance(expr, ast.Call)
        and (
            (isinstance(expr.func, ast.Name) and expr.func.id == "bindparam")
            or (isinstance(expr.func, ast.Attribute) and expr.func.attr == "bindparam")
        )
        and expr.args
        and isinstance(expr.args[0], ast.Constant)
        and isinstance(expr.args[0].value, str)
    ):
        return expr.args[0].value
    return None


def last_name(expr: ast.AST) -> str | None:
    """``x`` of ``a.x``, ``x``, ``row["x"]`` and ``bindparam("x")``."""
    if isinstance(expr, ast.Call):
        return _bind_name(expr)
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if (
        isinstance(expr, ast.Subscript)
        and isinstance(expr.slice, ast.Constant)
        and isinstance(expr.slice.value, str)
    ):
        return expr.slice.value
    return None


def _is_value_in_hand(expr: ast.AST) -> bool:
    """A variable, attribute or item (an object or key already in memory), not a literal, not a
    column of another table (``Other.id``, ``t.c.id``: that is a join, not a filter), or a
    bound parameter (``bindparam("dag_id")``: one value per execution)."""
    if isinstance(expr, ast.Call):
        return _bind_name(expr) is not None
    root = expr
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        if isinstance(root, ast.Attribute) and root.attr == "c":
            return False
        root = root.value
    if not isinstance(root, ast.Name) or root.id[:1].isupper():
        return False
    return isinstance(expr, (ast.Name, ast.Attribute, ast.Subscript))


#: Builtins of one argument that return something other than that value converted.
_NOT_CONVERSIONS = frozenset(
    {"len", "list", "set", "tuple", "sorted", "sum", "max", "min", "any", "all", "iter", "next",
     "filter", "map", "reversed", "enumerate", "zip", "range"}
)  # fmt: skip


def _converted(expr: ast.AST) -> ast.AST:
    """The value in hand a one-argument conversion reads: ``experiment_id`` of
    ``_parse_experiment_id(experiment_id)``, ``int(pk)``, ``uuid.UUID(row["id"])`` — the same
    one value, parsed; ``expr`` itself for anything else."""
    if (
        isinstance(expr, ast.Call)
        and len(expr.args) == 1
        and not isinstance(expr.args[0], ast.Starred)
        and all(isinstance(k.value, ast.Constant) for k in expr.keywords)
        and isinstance(expr.func, (ast.Name, ast.Attribute))
        and _bind_name(expr) is None
    ):
        name = expr.func.id if isinstance(expr.func, ast.Name) else expr.func.attr
        arg = expr.args[0]
        if name not in _NOT_CONVERSIONS and isinstance(
            arg, (ast.Name, ast.Attribute, ast.Subscript)
        ):
            return arg
    return expr


_KEY_SUFFIXES = ("id", "uuid", "pk", "key")


def _is_key_column(field: str) -> bool:
    """``run_uuid``, ``queue_id``, ``buildsetid``: a column holding the key of another row."""
    return field.lower().endswith(_KEY_SUFFIXES)


def names_a_row(column: str) -> bool:
    """A column whose value picks one row or one owner's rows: a key (``event_id``,
    ``run_uuid``, ``id``) or an owner (``user``, ``event``)."""
    return _is_key_column(column) or _strip_key(column) in _OWNERS


def _strip_key(name: str) -> str:
    lowered = name.lower()
    for suffix in ("_id", "_uuid", "_pk", "_key", "id", "uuid"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return lowered[: -len(suffix)].rstrip("_")
    return lowered


#: Column names that hold a value shared by many rows (a state, a kind, a date), not an owner:
#: ``filter(state=state)`` is no bound even though the names match.
_NOT_OWNERS = frozenset(
    {
        "state", "status", "type", "kind", "category", "name", "slug", "email", "language",
        "locale", "mode", "level", "priority", "source", "format", "version", "date", "day",
        "month", "year", "time", "active", "enabled", "public", "deleted", "visible", "value",
        "tag", "label", "flag", "country", "currency", "role", "action", "result", "code",
    }
)  # fmt: skip


def shared_attribute(column: str) -> bool:
    """A column holding a value many rows share, from a small domain: ``language``,
    ``content_type_id``, ``status``."""
    base = _strip_key(column)
    return base in _NOT_OWNERS or base.rsplit("_", 1)[-1] in _NOT_OWNERS


#: Where a web framework keeps the values a request names: Django's ``request.GET``/``POST``,
#: DRF's ``query_params``/``data``, Flask's ``args``/``form``/``values``/``json``.
_REQUEST_VALUES = frozenset(
    {"GET", "POST", "query_params", "data", "args", "form", "values", "json", "get_json"}
)  # ``get_json`` is called: ``request.get_json()["k"]``


def _named_by_the_request(expr: ast.AST) -> bool:
    """``request.GET.get("file-name")``, ``request.args["q"]``, ``request.query_params.get(x)``:
    one value the request names (a search, a form field), not a list of them (``getlist``)."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        if expr.func.attr != "get":
            return False
        expr = expr.func.value
    elif isinstance(expr, ast.Subscript):
        expr = expr.value
    else:
        return False
    if isinstance(expr, ast.Call) and not expr.args:  # ``request.get_json()["brand"]``
        expr = expr.func
    return (
        isinstance(expr, ast.Attribute)
        and expr.attr in _REQUEST_VALUES
        and last_name(expr.value) in ("request", "req")
    )


def _owner_match(field: str, value: ast.AST) -> bool:
    """``field == value`` selects the rows of one owner: a value in hand, and a field that names
    an owner (``event=self.event``) or is named like that value (``build_id == build_id``,
    ``submission=self.submission``), unless the field is a shared attribute (``state=state``);
    or the rows of one value the request names (``orig_filename=request.GET.get("name")``),
    unless that is a shared attribute (``status=request.GET["status"]`` picks a share)."""
    if _named_by_the_request(value):
        return not shared_attribute(field)
    given, value = value, _converted(value)
    if not _is_value_in_hand(value):
        return False
    if (
        given is not value
        and (last_name(value) or "").lower() in _KEY_NAMES
        and (_strip_key(field).rsplit("_", 1)[-1] == "name" or not shared_attribute(field))
    ):
        # ``Role.name == role_name_for(user.id)``: a value made from one row's key names that
        # row's own rows (not a state: ``status == status_of(job.id)`` is a share)
        return True
    base = _strip_key(field)
    if base in _OWNERS or base.rsplit("_", 1)[-1] in _OWNERS:
        return True
    if isinstance(value, ast.Name) and value.id in _THE_OBJECT and not shared_attribute(field):
        return True  # ``filter(cable=self)``: the rows that belong to the object in hand
    if _identifying(field):
        return True  # ``filter(email__iexact=email)``: the rows of one identifying value
    if _identifying(last_name(value) or "") and _strip_key(field) in _NAMING_COLUMNS:
        # ``Identity.identifier == username``, ``has(name=username)``: the rows of the one
        # person or thing the value identifies, in a column that names it
        return True
    named = last_name(value)
    if named is not None and _is_key_column(field) and _is_key_column(named):
        return True  # ``destination_id == run_id``: the rows of one referenced row
    if field.lower().endswith(("_id", "_uuid", "_pk")) and not shared_attribute(field):
        return True  # ``element_id=value``: the rows that reference one row, whatever it is called
    if named is None or not base:
        return False
    # A key column (``role_id``) names a row of another table even when that table is a shared
    # attribute elsewhere (``role``); a plain column named like a shared attribute does not.
    if base in _NOT_OWNERS and base == field.lower():
        return False
    if named.lower() in _KEY_NAMES and (field.lower() != base or not shared_attribute(field)):
        # ``buildsetid == row.id``, ``photoset=self.pk``: the rows that reference one row
        return True
    if named.lower().endswith(("_id", "_pk", "_uuid")) and not shared_attribute(field):
        return True  # ``child=ci_id``: a key in hand, named for the model it keys
    other = _strip_key(named)
    if (other in _OWNERS or other.rsplit("_", 1)[-1] in _OWNERS - _THE_OBJECT) and not (
        shared_attribute(field)
    ):
        # ``added_by=profile.user``, ``responsibles=other_user``: the rows of one owner in hand
        return True
    other, base = other.replace("_", ""), base.replace("_", "")  # ``photoset=photo_set``
    if _is_key_column(named) and len(other) >= 4 and base.startswith(other):
        return True  # ``conceptto=conceptid``: one end of a relation, keyed by a row in hand
    if (
        len(other) >= 3
        and base.startswith(other)
        and not _plural(base)  # ``programs=prog``: a many-to-many, shared by many rows
        and not shared_attribute(field)
    ):
        # ``registration=reg``, ``session=sess``: a row in hand, its name cut short; not
        # ``programs=program``, a many-to-many one row may share with every other
        return True
    return other.endswith(base) or (len(other) >= 3 and base.endswith(other))


#: Of :data:`_IDENTITY`, the values that stay one person's or one thing's under any prefix or
#: as a list (``all_emails``, ``user_email``); not ``code`` (``country_code`` is shared).
_IDENTITY_ANYWHERE = frozenset(
    {"email", "username", "login", "token", "fingerprint", "hostname", "handle", "barcode",
     "sku", "isbn"}
)  # fmt: skip


#: Words before an identifying word that make the column a flag or a date about it
#: (``send_email``, ``last_login``, ``has_token``), not the value itself.
_ABOUT_WORDS = frozenset(
    {"send", "sent", "has", "is", "last", "first", "failed", "notify", "allow", "allowed",
     "verified", "confirmed", "enable", "enabled", "receive", "use", "can", "should", "new",
     "old", "date", "count", "num", "show", "hide", "require", "required", "needs"}
)  # fmt: skip


#: Columns that name a person or a thing: compared to an identifying value (a user name, an
#: e-mail), they pick its row (``Identity.identifier == username``).
_NAMING_COLUMNS = frozenset({"identifier", "name", "login", "handle", "uid", "account"})


def _plural(name: str) -> bool:
    """``programs``, ``categories``, ``photos``; not ``process``, ``campus``, ``analysis``,
    ``canvas`` (singular words that end in ``s``)."""
    return name.endswith("s") and not name.endswith(("ss", "us", "is", "as"))


def _identifying(column: str) -> bool:
    """A column of identifying values (:data:`_IDENTITY`): ``email``, and, for the values of
    :data:`_IDENTITY_ANYWHERE`, the same as a list or a qualified name (``all_emails``,
    ``secondary_emails``, ``user_email``), not a flag or a date about one
    (``send_email``, ``last_login``: :data:`_ABOUT_WORDS`)."""
    lowered = column.lower()
    if lowered in _IDENTITY:
        return True
    words = lowered.split("_")
    last = words[-1]
    return (_strip_plural(last) or last) in _IDENTITY_ANYWHERE and not (
        _ABOUT_WORDS.intersection(words[:-1])
    )


def _dict_items(ctx: ModuleContext, expr: ast.expr) -> list[tuple[str, ast.expr]]:
    """The string keys and values of ``filters`` in ``filter(**filters)``: its one assigned
    value (a ``{...}`` literal or ``dict(k=v)``) and the ``filters["k"] = v`` stores to it in
    the same scope (a filter assembled key by key)."""
    found = _literal_items(_resolved(ctx, expr)) or []
    if isinstance(expr, ast.Name):
        scope = ctx.scope_of(expr)
        for assign in ctx.of_type(ast.Assign):
            for target in assign.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == expr.id
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                    and ctx.scope_of(assign) is scope
                ):
                    found.append((target.slice.value, assign.value))
    return found


def owner_filter(ctx: ModuleContext, link: Link, depth: int = 0) -> bool:
    """A ``filter``/``filter_by``/``where`` step keeping the rows of one owner's foreign key:
    ``filter(event=self.event)``, ``filter(review__submission=s)``, ``filter_by(user_id=uid)``,
    ``where(T.c.buildid == buildid)``, ``filter(Metric.run_uuid == run_uuid)``, and the same
    keywords passed as ``**filters``. ``depth``: how many queries deep this filter sits inside
    the one judged (``x = X.objects.filter(id__in=x)`` names itself)."""
    if link.kind == "method" and link.name in _JOINS:
        return _owner_join(ctx, link, depth)
    if link.kind == "method" and link.name == "with_parent":
        return True  # ``Host.query.with_parent(ws)``: the rows related to one object in hand
    call = _filter_call(link)
    if call is None:
        return False
    if any(isinstance(arg, ast.Call) and last_name(arg.func) == "with_parent" for arg in call.args):
        return True  # ``where(with_parent(ws, Workspace.hosts))``
    keywords = list(call.keywords)
    spread = _spread(ctx, call.args)
    args = [_resolved(ctx, a) for a in spread]
    if any(_built_of_owners(ctx, a, depth) for a in spread):
        return True
    for arg in args:
        # ``Q(speaker__user=user) | Q(...)``: the keywords of the Q objects filter too.
        keywords.extend(
            kw
            for node in ast.walk(arg)
            if isinstance(node, ast.Call) and last_name(node.func) == "Q"
            for kw in node.keywords
        )
    pairs: list[tuple[str, ast.expr]] = []
    for kw in keywords:
        if kw.arg is None:
            pairs.extend(_dict_items(ctx, kw.value))  # ``filter(**filters)``
            branches = _dicts_assigned(ctx, kw.value)
            if branches and all(
                any(_owner_keyword(ctx, key, value, depth) for key, value in branch)
                for branch in branches
            ):
                return True  # ``filters = {"email_id": x.id}`` or ``{"thread_id": …}``
        else:
            pairs.append((kw.arg, kw.value))
    if any(_owner_keyword(ctx, arg_name, value, depth) for arg_name, value in pairs):
        return True
    # equalities joined by AND, relationship criteria, and disjunctions of owners
    if any(_an_owners_condition(ctx, arg, depth) for arg in args):
        return True
    return _owners_in(ctx, args, depth)


def _an_owners_condition(ctx: ModuleContext, expr: ast.expr, depth: int, nest: int = 0) -> bool:
    """Every row that meets ``expr`` belongs to an owner in hand: an owner's equality
    (:func:`_owner_match`), a relationship criterion of one (:func:`_related_to_an_owner`), a
    conjunction with one such part, or a disjunction whose every branch is one
    (``or_(Abstract.submitter == user, Abstract.links.any(Link.person.has(user=user)))``: the
    rows of one user, reached two ways)."""
    if nest > 6:
        return False
    expr = _resolved(ctx, expr)
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq):
        left = column_of(expr.left)
        if isinstance(left, ast.Attribute) and left.attr not in _JSON_TEXT:
            return _owner_match(left.attr, expr.comparators[0])
        key = _document_key(expr.left)
        if key is not None:
            return _owner_match(key, expr.comparators[0])
    if _related_to_an_owner(ctx, expr, depth):
        return True
    branches = _branches(expr)
    if branches is not None:
        return all(_an_owners_condition(ctx, b, depth, nest + 1) for b in branches)
    parts = list(conjuncts(expr))[1:]
    return any(_an_owners_condition(ctx, part, depth, nest + 1) for part in parts)


#: SQLAlchemy's casts of a JSON element to a value: ``col["k"].as_string()``, ``.astext``.
_JSON_CASTS = frozenset({"as_string", "as_integer", "as_float", "as_boolean", "as_json"})
_JSON_TEXT = frozenset({"astext"})


def _document_key(expr: ast.expr) -> str | None:
    """The key of a JSON document's element a condition compares: ``"chat_id"`` for
    ``Feedback.meta["chat_id"].as_string()`` or ``File.meta["data"]["knowledge_id"].astext``
    (the last key, read as a column of that name); None for anything else."""
    if (
        isinstance(expr, ast.Call)
        and not expr.args
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in _JSON_CASTS
    ):
        expr = expr.func.value
    elif isinstance(expr, ast.Attribute) and expr.attr in _JSON_TEXT:
        expr = expr.value
    if (
        isinstance(expr, ast.Subscript)
        and isinstance(expr.slice, ast.Constant)
        and isinstance(expr.slice.value, str)
        and isinstance(expr.value, (ast.Attribute, ast.Subscript))
    ):
        return expr.slice.value
    return None


def _branches(expr: ast.expr) -> list[ast.expr] | None:
    """The alternatives of ``or_(a, b)``, ``a | b`` and ``a or b``; None for anything else."""
    if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.Or):
        return list(expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return [expr.left, expr.right]
    if isinstance(expr, ast.Call) and last_name(expr.func) == "or_" and expr.args:
        return list(expr.args)
    return None


#: SQLAlchemy's relationship comparators: ``X.rel.has(…)`` (many-to-one) and ``X.rel.any(…)``
#: (one-to-many, many-to-many) keep the rows whose related row meets the criteria.
_RELATED = ("has", "any")


def _related_to_an_owner(ctx: ModuleContext, expr: ast.expr, depth: int) -> bool:
    """``Break.timetable_entry.has(event=event)``, ``SessionBlock.session.has(event=self.event,
    is_deleted=False)``, ``Contribution.person_links.any(Link.person.has(user=user))``: rows
    related to a row that belongs to one owner in hand (its keywords, or its criteria met by
    every row, one of which is an owner filter) belong to that owner too."""
    if not (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in _RELATED
        and isinstance(expr.func.value, ast.Attribute)
    ):
        return False
    if any(
        kw.arg is not None and _owner_keyword(ctx, kw.arg, kw.value, depth) for kw in expr.keywords
    ):
        return True
    return any(_an_owners_condition(ctx, a, depth) for a in expr.args)


def _filter_call(link: Link) -> ast.Call | None:
    """The call of a ``filter``/``where``/``filter_by`` step, or None for any other step."""
    if link.kind != "method" or link.name not in ("filter", "where", "filter_by"):
        return None
    return link.node if isinstance(link.node, ast.Call) else None


def _owner_keyword(ctx: ModuleContext, arg_name: str, value: ast.expr, depth: int) -> bool:
    """``arg_name=value`` of a Django filter keeps the rows of one owner, of owners or keys in
    hand, or of one identifying value (see :func:`owner_filter`)."""
    parts = arg_name.split("__")
    if parts[-1] == "in" and len(parts) > 1:
        # ``submission_id__in=ids`` / ``event__in=events``: the rows of owners in hand, or of a
        # query that is itself the rows of one owner.
        if _literal_of_owners(ctx, parts[-2], value):
            # ``responsibles__in=[other_user]``, ``users__in={user, *cc_users}``: the rows of
            # the few owners the code names
            return True
        return (_in_memory_list(ctx, value) or owners_query(ctx, value, depth + 1)) and (
            _is_key_column(parts[-2])
            or _strip_key(parts[-2]) in _OWNERS
            or _identifying(parts[-2])
            or _named_like_its_items(parts[-2], value)
        )
    if parts[-1] in ("exact", "iexact") and len(parts) > 1:
        parts = parts[:-1]  # ``email__iexact=email``: an equality
    elif parts[-1] in ("startswith", "istartswith") and len(parts) > 1:
        # ``username__startswith=user.username``: the rows sharing one whole identifying value
        # as a prefix (its numbered variants), not a letter's worth of rows
        return parts[-2].lower() in _IDENTITY and _is_value_in_hand(value)
    elif parts[-1] in _LOOKUPS:
        return False
    if isinstance(value, ast.Name) and value.id == "self" and not shared_attribute(parts[0]):
        # ``filter(bookings__source=self)``: the rows related to the object in hand through a
        # relation that is no shared attribute (``language=self`` picks one language's share)
        return True
    return _owner_match(parts[-1], value)


def _dicts_assigned(ctx: ModuleContext, expr: ast.expr) -> list[list[tuple[str, ast.expr]]]:
    """The string keys and values of each ``{...}`` literal or ``dict(k=v)`` assigned to
    ``filters`` in ``filter(**filters)`` when it is assigned more than once (one branch each:
    ``if …: filters = {"email__thread_id": t.id} elif …: filters = {"email_id": e.id}``); empty
    when any of its values is something else."""
    if not isinstance(expr, ast.Name):
        return []
    values = ctx.assigned_values(expr.id, expr)
    if len(values) < 2:
        return []
    branches = [_literal_items(value) for value in values]
    return [b for b in branches if b is not None] if None not in branches else []


def _literal_items(value: ast.expr) -> list[tuple[str, ast.expr]] | None:
    """The string keys and values of a ``{...}`` literal or a ``dict(k=v)`` call; None for
    any other expression."""
    if isinstance(value, ast.Dict):
        return [
            (key.value, item)
            for key, item in zip(value.keys, value.values, strict=False)
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
        ]
    if isinstance(value, ast.Call) and last_name(value.func) == "dict":
        return [(kw.arg, kw.value) for kw in value.keywords if kw.arg]
    return None


def _owners_in(ctx: ModuleContext, args: Iterable[ast.expr], depth: int) -> bool:
    """``Trace.request_id.in_(trace_ids)``, ``Link.comment.in_(comment_ids)``,
    ``tuple_(F.bucket, F.key).in_(keys)``: the rows of a list of owners or keys in hand (or of
    a query that is itself one owner's rows)."""
    for column, values in memberships(args):
        if not (_in_memory_list(ctx, values) or owners_query(ctx, values, depth + 1)):
            continue
        if (
            _is_key_column(column)
            or _strip_key(column) in _OWNERS
            or _identifying(column)
            or _named_like_its_items(column, values)
        ):
            return True
    return False


def _literal_of_owners(ctx: ModuleContext, column: str, expr: ast.expr) -> bool:
    """``[other_user]``, ``{user, *additional_users}``, or a name assigned one such literal: a
    list, tuple or set written out of owners in hand, each of which alone would bound a filter
    on ``column`` (:func:`_owner_match`; a spread list named for owners, ``*cc_users``)."""
    expr = _resolved(ctx, expr)
    if not isinstance(expr, (ast.List, ast.Tuple, ast.Set)) or not expr.elts:
        return False
    for item in expr.elts:
        if _query_shaped(ctx, item):
            return False
        if isinstance(item, ast.Starred):
            named = last_name(item.value)
            items = _strip_plural(named) if named else ""
            if not (
                _is_value_in_hand(item.value)
                and not shared_attribute(column)
                and (
                    items.rsplit("_", 1)[-1] in _OWNERS or _named_like_its_items(column, item.value)
                )
            ):
                return False
        elif not _owner_match(column, item):
            return False
    return True


def _query_shaped(ctx: ModuleContext, expr: ast.expr) -> bool:
    """``expr`` expands to a query (a manager, ``values_list``, ``select``…), not an object."""
    if isinstance(expr, ast.Starred):
        expr = expr.value
    return any(link.name in _QUERY_STEPS for link in ctx.expand(expr))


def _named_like_its_items(column: str, values: ast.AST) -> bool:
    """A list named for what the column holds: ``comment.in_(comment_ids)``,
    ``question__in=submission_questions``, ``file_attachments__in=file_attachments`` (one item
    of the list is one row the column refers to)."""
    named = last_name(values)
    plural = _strip_plural(named) if named else ""
    if not plural:
        return False
    field = _strip_key(column)
    field = (_strip_plural(field) or field).replace("_", "")
    plural = plural.replace("_", "")
    if shared_attribute(column):
        return False
    # ``comment.in_(comment_ids)``, and ``represented_users__in=users`` (the column names a
    # kind of the listed items)
    return (len(field) >= 3 and plural.endswith(field)) or (
        len(plural) >= 4 and field.endswith(plural)
    )


def _strip_plural(name: str) -> str:
    """``comment_ids`` → ``comment``, ``users`` → ``user``: what one item of a list names."""
    lowered = name.lower()
    for suffix in ("_ids", "_keys", "_pks", "_uuids", "ids", "_list", "_set", "s"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return lowered[: -len(suffix)].rstrip("_")
    return ""


#: Query steps that join another table or statement.
_JOINS = frozenset({"join", "outerjoin", "join_from"})


def _owner_join(ctx: ModuleContext, link: Link, depth: int) -> bool:
    """``.join(stmt, and_(F.entity_id == entity_id, …))``: an inner join whose condition keeps
    one owner's rows, or whose target is a statement of one owner's rows (``stmt`` a subquery
    filtered on ``task_id == task_id``)."""
    call = link.node
    if link.name == "outerjoin" or not isinstance(call, ast.Call) or not call.args:
        return False
    if any(kw.arg in ("isouter", "full") for kw in call.keywords):
        return False
    target, *conditions = (_resolved(ctx, a) for a in call.args)
    if any(_owner_match(column, value) for column, value, _ in equalities(conditions)):
        return True
    return owners_query(ctx, target, depth + 1)


def owners_query(ctx: ModuleContext, expr: ast.AST, depth: int = 0) -> bool:
    """``expr`` is a query (a subquery, a statement, a queryset) of one owner's rows, or of
    keys in hand: ``query.filter(F.task_id == task_id).subquery()``,
    ``Link.objects.filter(company=c).values_list("user__id")``."""
    if depth > 2 or not isinstance(expr, (ast.Name, ast.Attribute, ast.Call)):
        return False
    chain = ctx.expand(expr)
    if _related_rows_in_hand(ctx, chain):
        return True
    if not any(link.name in _QUERY_STEPS or link.name in ("filter", "where") for link in chain):
        return False
    return any(
        link.kind == "method"
        and (
            key_in_list(ctx, link)
            or (link.name in ("filter", "where", "filter_by") and owner_filter(ctx, link, depth))
        )
        for link in chain
    )


#: Django queryset steps that a related manager starts: ``library.uploads.all()``.
_RELATED_STEPS = frozenset(
    {"all", "filter", "exclude", "values", "values_list", "order_by", "distinct", "only"}
)
#: Attributes that give every row, a session or a table's columns, not one object's relation.
_NOT_RELATIONS = frozenset(
    {"objects", "query", "session", "c", "columns", "queryset", "qs", "history"}
)
#: Names that hold a model class (whose managers give every row), not one object.
_CLASS_NAMES = frozenset({"self", "cls", "model", "klass", "model_class", "model_cls"})


#: Calls that give one object: ``self.get_object()``, ``Library.objects.get(pk=pk)``.
_ONE_OBJECT = frozenset({"get_object", "get", "first", "last", "latest", "earliest"})


def _related_rows_in_hand(ctx: ModuleContext, chain: list[Link]) -> bool:
    """``library.uploads.all()``, ``self.get_object().talk_set.values_list("id")``: a related
    manager of one object in hand (a local value, not a module, a class or ``self``, whose
    ``queryset`` may be a whole table; or what a call that gives one object returns): that
    object's rows."""
    for i in range(1, len(chain) - 1):
        relation, step = chain[i], chain[i + 1]
        if not (
            relation.kind == "attr"
            and relation.name[:1].islower()
            and relation.name not in _NOT_RELATIONS
            and step.kind == "method"
            and step.name in _RELATED_STEPS
        ):
            continue
        before = chain[i - 1]
        if before.kind == "method" and before.name in _ONE_OBJECT:
            return True
        return (
            i == 1
            and before.kind == "name"
            and before.name[:1].islower()
            and before.name not in _CLASS_NAMES
            and ctx.qualify(before.node) is None  # an imported module or name
        )
    return False


_QUERY_STEPS = frozenset(
    {"select", "query", "subquery", "scalar_subquery", "values_list", "values", "objects", "all"}
)


_PK_NAMES = frozenset({"id", "pk"})


def _a_literal(expr: ast.AST) -> bool:
    """``3``, ``"a1b2"``: one value written in the code (a primary key equal to it is one row)."""
    return isinstance(expr, ast.Constant) and isinstance(expr.value, (int, str))


def _in_memory_list(ctx: ModuleContext, expr: ast.AST) -> bool:
    """An argument of ``in_``/``pk__in`` that is a list in hand, not a subquery."""
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.SetComp)):
        return True
    chain = ctx.expand(expr)
    if (
        chain
        and chain[-1].kind == "method"
        and chain[-1].name in _FETCHED
        and any(link.kind == "method" and link.name in _EXECUTED for link in chain)
    ):
        # ``ids = session.execute(stmt.limit(n)).scalars().all()``: a page of keys, fetched
        # already; a fetch of every key is no bound (it is reported itself)
        steps = list(chain)
        for link in chain:
            if link.name in _EXECUTED and isinstance(link.node, ast.Call) and link.node.args:
                steps += ctx.expand(link.node.args[0])
        return any(link.kind == "method" and link.name in _PAGES for link in steps)
    return not any(
        link.name in _QUERY_STEPS for link in chain if link.kind in ("method", "attr", "func")
    )


#: Calls that run a statement (SQLAlchemy, DB-API), and the steps that then fetch its rows into
#: a list in memory (unlike Django's ``.all()``, which is another query).
_EXECUTED = frozenset({"execute", "scalars", "exec_driver_sql"})
_FETCHED = frozenset({"all", "fetchall", "fetchmany"})
_PAGES = frozenset({"limit", "fetch", "slice", "fetchmany"})


def column_of(expr: ast.expr) -> ast.expr:
    """The column an expression names: ``X.id`` for SQLModel's ``col(X.id)`` (a typing
    helper that returns its argument), else ``expr`` itself."""
    if (
        isinstance(expr, ast.Call)
        and last_name(expr.func) == "col"
        and len(expr.args) == 1
        and not expr.keywords
    ):
        return expr.args[0]
    return expr


def memberships(args: Iterable[ast.expr]) -> Iterator[tuple[str, ast.expr]]:
    """``(column, values)`` for each ``X.column.in_(values)`` inside ``args``; for
    ``tuple_(X.a, X.b).in_(values)``, each column of the tuple."""
    for arg in args:
        for node in ast.walk(arg):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "in_"
                and len(node.args) == 1
            ):
                of = column_of(node.func.value)
                if isinstance(of, ast.Attribute):
                    yield of.attr, node.args[0]
                elif isinstance(of, ast.Call) and last_name(of.func) == "tuple_":
                    for column in of.args:
                        if isinstance(column, ast.Attribute):
                            yield column.attr, node.args[0]


def equalities(args: Iterable[ast.expr]) -> Iterator[tuple[str, ast.expr, ast.Compare]]:
    """``(column, value, node)`` for each ``X.column == value`` that every row of ``args``
    (filter arguments, joined by AND) meets: one of them, or a part of ``and_(…)``, ``a & b`` or
    ``a and b`` among them. Not one that only some rows meet: inside ``or_(…)``, ``a | b``, a
    negation, or a branch of ``x if c else True`` (``filter((Books.id == book_id) if book_id
    != -1 else True)`` loads every book when called with -1), nor a subquery's own."""
    for arg in args:
        for node in conjuncts(arg):
            if (
                isinstance(node, ast.Compare)
                and len(node.ops) == 1
                and isinstance(node.ops[0], ast.Eq)
                and isinstance(column := column_of(node.left), ast.Attribute)
            ):
                yield column.attr, node.comparators[0], node


def conjuncts(expr: ast.expr) -> Iterator[ast.expr]:
    """``expr`` and, through ``and_(…)``, ``a & b`` and ``a and b``, the conditions it joins."""
    yield expr
    if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.And):
        parts: list[ast.expr] = list(expr.values)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitAnd):
        parts = [expr.left, expr.right]
    elif isinstance(expr, ast.Call) and last_name(expr.func) == "and_":
        parts = list(expr.args)
    else:
        return
    for part in parts:
        yield from conjuncts(part)


def _resolved(ctx: ModuleContext, expr: ast.expr) -> ast.expr:
    """``whereclause`` in ``.where(whereclause)``: the one value it was assigned, if one. A
    condition narrowed later by ``cond = cond & ~Q(…)`` (in a branch or not) still holds on
    every row: its first value is the one every path shares."""
    if isinstance(expr, ast.Name):
        values = ctx.assigned_values(expr.id, expr)
        if len(values) == 1:
            return values[0]
        base = [v for v in values if not _narrows(v, expr.id)]
        if len(base) == 1 and len(values) > 1:
            return base[0]
    return expr


def _built_of_owners(ctx: ModuleContext, expr: ast.expr, depth: int) -> bool:
    """``q = Q()`` then ``q |= Q(product__parent_id=p.id)``: a ``Q`` built clause by clause
    that keeps one owner's rows — an empty start widened by ``|=`` clauses each of which is
    an owner's (one of them on every path: otherwise a path keeps the empty ``Q``, every
    row), or narrowed on every path by an ``&=`` clause that is."""
    if not isinstance(expr, ast.Name):
        return False
    scope = ctx.scope_of(expr)
    start = _resolved(ctx, expr)
    widened: list[tuple[ast.expr, bool]] = []
    for aug in ctx.of_type(ast.AugAssign):
        if not (
            isinstance(aug.target, ast.Name)
            and aug.target.id == expr.id
            and ctx.scope_of(aug) is scope
            and isinstance(aug.op, (ast.BitOr, ast.BitAnd))
        ):
            continue
        every_path = ctx.parent(aug) is scope
        if isinstance(aug.op, ast.BitAnd):
            if every_path and _q_of_an_owner(ctx, aug.value, depth):
                return True
        else:
            widened.append((aug.value, every_path))
    empty_start = (
        isinstance(start, ast.Call)
        and last_name(start.func) == "Q"
        and not start.args
        and not start.keywords
    )
    return (
        empty_start
        and any(every_path for _, every_path in widened)
        and all(_q_of_an_owner(ctx, value, depth) for value, _ in widened)
    )


def _q_of_an_owner(ctx: ModuleContext, expr: ast.expr, depth: int) -> bool:
    """A keyword of a ``Q(…)`` in ``expr`` keeps one owner's rows (:func:`_owner_keyword`)."""
    return any(
        kw.arg is not None and _owner_keyword(ctx, kw.arg, kw.value, depth)
        for node in ast.walk(expr)
        if isinstance(node, ast.Call) and last_name(node.func) == "Q"
        for kw in node.keywords
    )


def _spread(ctx: ModuleContext, args: Iterable[ast.expr]) -> list[ast.expr]:
    """``args`` with ``*conditions`` replaced by the items of the one list or tuple literal
    ``conditions`` was assigned (``filter(*conditions)``: each item is a condition)."""
    out: list[ast.expr] = []
    for arg in args:
        if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
            values = ctx.assigned_values(arg.value.id, arg)
            if len(values) == 1 and isinstance(values[0], (ast.List, ast.Tuple)):
                out.extend(values[0].elts)
                continue
        out.append(arg)
    return out


def _narrows(value: ast.expr, name: str) -> bool:
    """``value`` is ``name & …`` or ``… & name``: a conjunction that keeps ``name``."""
    return (
        isinstance(value, ast.BinOp)
        and isinstance(value.op, ast.BitAnd)
        and any(
            isinstance(side, ast.Name) and side.id == name for side in (value.left, value.right)
        )
    )


def key_in_list(ctx: ModuleContext, link: Link) -> bool:
    """A ``filter``/``where`` step keeping rows whose primary key is in a list already in memory,
    or equal to one value in hand.

    ``.filter(Model.id.in_(ids))`` or ``.filter(pk__in=ids)`` returns at most ``len(ids)`` rows:
    memory the caller already pays for. A subquery in place of the list gives no such bound.
    """
    call = _filter_call(link)
    if call is None:
        return False
    for kw in call.keywords:
        if kw.arg in ("pk__in", "id__in") and _in_memory_list(ctx, kw.value):
            return True
        if kw.arg in ("pk", "id") and (_is_value_in_hand(kw.value) or _a_literal(kw.value)):
            return True  # one row
    for column, value, node in equalities(_resolved(ctx, a) for a in call.args):
        if (
            column in _PK_NAMES
            and (_is_value_in_hand(value) or _a_literal(value))
            and not isinstance(ctx.parent(node), ast.BoolOp)
        ):
            return True  # ``tbl.c.id == masterid``: one row
    for arg in call.args:
        if (
            isinstance(arg, ast.Call)
            and isinstance(arg.func, ast.Attribute)
            and arg.func.attr == "in_"
            and isinstance(pk := column_of(arg.func.value), ast.Attribute)
            and pk.attr in _PK_NAMES
            and len(arg.args) == 1
            and _in_memory_list(ctx, arg.args[0])
        ):
            return True
    return False


#: Flags that mark the accounts that run an application (its superusers, staff, administrators):
#: the rows holding one are a handful, whatever the number of users.
_PRIVILEGED = frozenset(
    {"is_superuser", "is_staff", "is_admin", "is_administrator", "superuser", "staff", "admin"}
)


def privileged_only(ctx: ModuleContext, link: Link) -> bool:
    """A ``filter``/``filter_by``/``where`` step keeping only the accounts flagged as
    superusers, staff or administrators (``filter(is_superuser=True)``,
    ``filter(pk__is_superuser=True)`` of a profile keyed by its user, ``where(User.admin ==
    True)``): a small subset by construction. Only a condition every row meets counts (not one
    side of an ``or``)."""
    call = _filter_call(link)
    if call is None:
        return False
    for kw in call.keywords:
        parts = (kw.arg or "").split("__")
        if parts[-1] == "exact" and len(parts) > 1:
            parts.pop()
        # The flag of the row itself, or of the account its own key is (a profile whose primary
        # key is its user's: ``pk__is_superuser``); not of a row it refers to
        # (``user__is_staff`` picks every log entry the staff wrote).
        own = len(parts) == 1 or (len(parts) == 2 and parts[0] in ("pk", "id"))
        if own and parts[-1] in _PRIVILEGED and _constant_true(kw.value):
            return True
    args = [_resolved(ctx, a) for a in call.args]
    if any(_privileged_q(arg) for arg in args):
        return True
    return any(
        column in _PRIVILEGED and _constant_true(value) for column, value, _ in equalities(args)
    )


def _privileged_q(expr: ast.expr) -> bool:
    """``Q(is_staff=True) | Q(is_superuser=True)``: a ``Q`` every row of which is flagged
    privileged — each side of an ``|``, either side of an ``&``."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _privileged_q(expr.left) and _privileged_q(expr.right)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitAnd):
        return _privileged_q(expr.left) or _privileged_q(expr.right)
    if isinstance(expr, ast.Call) and last_name(expr.func) == "Q":
        return any(
            kw.arg in _PRIVILEGED and _constant_true(kw.value) for kw in expr.keywords
        ) or any(_privileged_q(arg) for arg in expr.args)
    return False


def _constant_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True
