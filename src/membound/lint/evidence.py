"""What the whole project tells the rules of one file: the size of the table a query reads
(small, big or unknown; ``lint/sizes.py`` says where sizes come from), the model → table map,
and which functions run as batch jobs (``lint/call_graph.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from membound.lint.call_graph import CallGraph
from membound.lint.sizes import DEFAULT_SMALL_TABLE_ROWS, TableSizes, format_rows
from membound.lint.tables import ModelTables, sql_tables

__all__ = ["Evidence", "TableSize", "deciding"]


@dataclass(frozen=True)
class TableSize:
    """The size of what one query reads."""

    rows: int
    table: str
    """The table (or the model, where the sizes file names the model)."""
    source: str
    small: bool
    at_least: bool = False
    """Counted up to a cap that it reached."""

    def words(self) -> str:
        """``≈1.2M rows of `files` (pg_class estimate)``."""
        about = "≥" if self.at_least else "≈"
        return f"{about}{format_rows(self.rows)} rows of `{self.table}` ({self.source})"


@dataclass(frozen=True)
class Evidence:
    """Sizes and the model → table map of one run."""

    sizes: TableSizes
    tables: ModelTables
    small_table_rows: int = DEFAULT_SMALL_TABLE_ROWS
    unmatched: tuple[str, ...] = ()
    """Names of a sizes file that match nothing in the code linted (no model maps to the
    table, no code names it; no model of that name)."""
    calls: CallGraph | None = None
    """The project's batch code: functions its entry points reach (``lint/call_graph.py``)."""

    @staticmethod
    def unmatched_names(sizes: TableSizes, tables: ModelTables, words: set[str]) -> tuple[str, ...]:
        """The tables and models of ``sizes`` that match nothing: ``words`` are the
        identifiers of the code linted (lower case)."""
        mapped = {t.lower() for t in tables.by_path.values()}
        out = [
            name
            for name in sizes.tables
            if (bare := name.lower().rsplit(".", 1)[-1].strip('"`[]')) not in mapped
            and bare not in words
            and not _join_table(bare, mapped, words)
        ]
        for name in sizes.models:
            last = name.rsplit(".", 1)[-1]
            known = any(p == name or p.endswith("." + name) for p in tables.by_path)
            if not known and last.lower() not in words:
                out.append(name)
        return tuple(sorted(out))

    def sized(self, rows: int, table: str) -> TableSize:
        """``rows`` of ``table`` judged against the threshold."""
        small = rows < self.small_table_rows
        return TableSize(rows, table, self.sizes.source, small, table in self.sizes.capped)

    def of_model(self, qualified: str | None, name: str) -> TableSize | None:
        """The size of the table of the model written ``name`` (imported as ``qualified``).
        A bare name that several of the project's models share matches no ``[models]`` entry
        by its tail (a chapter's ``Notice`` is not the notifications ``Notice``)."""
        if qualified:
            rows = self.sizes.model_rows(self.tables.defined(qualified))
            if rows is None:
                rows = self.sizes.model_rows(qualified)
        elif name.rsplit(".", 1)[-1] in self.tables.shared_names:
            rows = None
        else:
            rows = self.sizes.model_rows(name)
        if rows is not None:
            return self.sized(rows, name.rsplit(".", 1)[-1])
        table = self.tables.table_of(qualified, name)
        if table is None:
            return None
        rows = self.sizes.table_rows(table)
        return None if rows is None else self.sized(rows, table)

    def of_app_model(self, app: str, model: str) -> TableSize | None:
        """The size of the table of ``apps.get_model(app, model)`` in a migration: Django's
        default table (``app_model``) when the sizes name it, else the project's model of that
        name when it belongs to that app (its table is ``app_…``, or its module path has the
        app's package in it). A model of another app that shares the name is another table
        (``get_model("autoreply", "Alias")`` is not ``admin.Alias``); a model the app has since
        deleted has no class left to map, and no size here."""
        default = f"{app}_{model}".lower()
        rows = self.sizes.table_rows(default)
        if rows is not None:
            return self.sized(rows, default)
        ours = [
            path
            for path, table in self.tables.by_path.items()
            if path.rsplit(".", 1)[-1].lower() == model.lower()
            and (table.startswith(f"{app.lower()}_") or app in path.split(".")[:-1])
        ]
        if len(ours) != 1:
            return None
        return self.of_model(ours[0], model)

    def of_sql(self, texts: Iterable[str]) -> TableSize | None:
        """The size that decides for SQL reading these texts' tables: the biggest known table
        when one is big, a small one when every table named is known and small, else None."""
        found: list[TableSize | None] = []
        for text in texts:
            for table in sql_tables(text):
                rows = self.sizes.table_rows(table)
                found.append(None if rows is None else self.sized(rows, table))
        return deciding(found)


def deciding(sizes: list[TableSize | None]) -> TableSize | None:
    """The size that decides for a read of several tables (None: a table of unknown size): the
    biggest known when it is big; a small one only when every table is known and small."""
    known = [size for size in sizes if size is not None]
    unknown = len(known) < len(sizes)
    if not known:
        return None
    biggest = max(known, key=lambda s: s.rows)
    return biggest if not biggest.small or not unknown else None


#: The many-to-many tables of Django's own models (``User.groups``, ``User.user_permissions``,
#: ``Group.permissions``): a sizes file written from the database names them, the code never.
_FRAMEWORK_JOIN_TABLES = frozenset(
    {"auth_user_groups", "auth_user_user_permissions", "auth_group_permissions"}
)


def _join_table(table: str, mapped: set[str], words: set[str]) -> bool:
    """``table`` is the table Django makes for a many-to-many field: a mapped model's table,
    ``_``, and the field's name, a word of the code (``hyperkitty_mailinglist_owners`` for
    ``MailingList.owners``; ``core_user_groups`` for a swapped user model's ``groups``), or
    one of Django's own models' (``auth_user_groups``)."""
    if table in _FRAMEWORK_JOIN_TABLES:
        return True
    for cut in range(len(table) - 1, 0, -1):
        if table[cut] == "_" and table[:cut] in mapped and table[cut + 1 :] in words:
            return True
    return False
