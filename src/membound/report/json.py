"""JSON reports with a versioned schema and stable keys.

Document shape (schema ``membound/1``)::

    {"schema": "membound/1", "type": "measurement" | "comparison" | "complexity" | "leaks",
     "result": {...}}

``result`` is the result's ``to_dict()``: field names of the result dataclasses, sizes in bytes,
times in seconds. New keys may be added within a schema version; none is renamed or removed.

A measurement's ``result`` also holds where its memory was (DESIGN §5 rule 9): ``peak_sites`` and
``end_sites``, lists of objects with ``PeakSite``'s fields (``file``, ``line``, ``function``,
``bytes``, ``share``, ``kind``, ``trace``, ``native_symbol``, ``thread``), empty unless
``where`` was asked for, and ``where_source`` / ``where_note``. Files written before these keys
existed read back as a measurement without sites. :func:`loads` checks every field of what it
reads, the sites' too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from membound._errors import MemboundError, describe_exception
from membound._files import Unreadable, read_regular
from membound.results import Comparison, Complexity, LeakReport, Measurement, Result
from membound.results.checked import check_result

__all__ = ["MAX_BYTES", "SCHEMA", "JsonReporter", "Result", "dumps", "load", "loads"]

SCHEMA = "membound/1"
_TYPES: dict[str, type[Measurement] | type[Comparison] | type[Complexity] | type[LeakReport]] = {
    "measurement": Measurement,
    "comparison": Comparison,
    "complexity": Complexity,
    "leaks": LeakReport,
}

_HINT = "give a file written by 'membound … --json PATH'"
#: The largest results file read: membound writes at most a few MiB (timelines are bounded to
#: 10,000 points each), and parsing JSON takes several times its size in memory.
MAX_BYTES = 64 * 2**20


def _type_name(result: Result) -> str:
    return next(name for name, cls in _TYPES.items() if isinstance(result, cls))


def dumps(result: Result) -> str:
    """The JSON document of ``result``."""
    doc = {"schema": SCHEMA, "type": _type_name(result), "result": result.to_dict()}
    return json.dumps(doc, indent=1, allow_nan=False)


def loads(text: str) -> Result:
    """Parse a JSON document written by :func:`dumps`.

    Raises:
        MemboundError: not JSON, or not a membound result of a known schema.
    """
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise MemboundError(f"not a JSON file: {exc}", hint=_HINT) from None
    except RecursionError:
        raise MemboundError("not a membound result: nested too deeply", hint=_HINT) from None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != SCHEMA
        or not isinstance(doc.get("type"), str)
        or doc.get("type") not in _TYPES
    ):
        raise MemboundError(
            f"not a membound result (expected schema {SCHEMA!r} with a known type)",
            hint=_HINT,
        )
    if not isinstance(doc.get("result"), dict):
        raise MemboundError("malformed membound result: 'result' is not an object", hint=_HINT)
    try:
        result = _TYPES[doc["type"]].from_dict(doc["result"])
        check_result(result)
    except KeyError as exc:
        raise MemboundError(f"malformed membound result: no {exc}", hint=_HINT) from None
    except RecursionError:
        raise MemboundError("malformed membound result: nested too deeply", hint=_HINT) from None
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        # from_dict meets the wrong kind of value (a list for an object, a string for a
        # number), or check_result names a field that is wrong
        raise MemboundError(
            f"malformed membound result: {describe_exception(exc).split(': ', 1)[-1]}", hint=_HINT
        ) from None
    return result


def load(path: str | Path) -> Result:
    """Read a JSON report file: a regular file of at most :data:`MAX_BYTES` (a FIFO would
    block for ever, a link to ``/dev/zero`` would never end; neither is opened).

    Raises:
        MemboundError: the file is missing, unreadable, not a regular file, too large, or not a
            membound result.
    """
    try:
        data = read_regular(path, MAX_BYTES)
    except Unreadable as exc:
        reason = str(exc)
        # What is not a result file at all needs no hint on how to make one: one line.
        hint = "" if reason.startswith(("not a regular file", "file too large")) else _HINT
        raise MemboundError(f"cannot read {path}: {reason}", hint=hint) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MemboundError(f"cannot read {path}: {exc}", hint=_HINT) from None
    return loads(text)


class JsonReporter:
    """Build a JSON report from a result, then ``render(outfile)``."""

    def __init__(self, result: Result) -> None:
        self.result = result

    def render(self, outfile: IO[str]) -> None:
        """Write the JSON document to ``outfile``."""
        outfile.write(dumps(self.result))
        outfile.write("\n")
