"""Run by a newer Python than membound's own (``lint/newer_python.py``): lint the files named on
stdin and print their findings as JSON. Only the standard library is imported before
``membound.lint``; membound's package ``__init__`` (which needs membound's dependencies, absent
from a bare interpreter) is skipped by registering the package by its path alone."""

import dataclasses
import json
import os
import sys
import types


def _main() -> None:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stub = types.ModuleType("membound")
    stub.__path__ = [package]
    sys.modules["membound"] = stub
    from membound.lint.call_graph import CallGraph
    from membound.lint.config import LintConfig
    from membound.lint.engine import lint_source, read_source
    from membound.lint.evidence import Evidence
    from membound.lint.model_shape import ModelShape
    from membound.lint.sizes import TableSizes
    from membound.lint.tables import ModelTables

    job = json.load(sys.stdin)
    settings = job["settings"]
    config = LintConfig(max_file_size=settings["max_file_size"])
    evidence = None
    if job.get("evidence"):
        e = job["evidence"]
        sizes = TableSizes(e["tables"], e["models"], e["source"], frozenset(e["capped"]))
        shapes = {
            path: ModelShape(
                tuple(frozenset(k) for k in unique), plain, identified, fields, frozenset(keys)
            )
            for path, (unique, plain, identified, fields, keys) in e["shapes"].items()
        }
        tables = ModelTables(e["by_path"], shapes, e["modules"])
        calls = CallGraph(e.get("batch", {}), e.get("batch_modules", {}))
        evidence = Evidence(sizes, tables, e["small_table_rows"], calls=calls)
    out: list[dict[str, object]] = []
    for item in job["files"]:
        path = item["path"]
        read = read_source(path, config)
        if not isinstance(read, tuple):
            out.append({"error": [read.reason, read.row, read.column]})
            continue
        text = read[0]
        try:
            found = lint_source(
                text,
                path,
                select=item["codes"],
                streaming_calls=settings["streaming_calls"],
                preview=item["preview"],
                small_models=settings["small_models"],
                large_models=settings["large_models"],
                evidence=evidence,
            )
        except SyntaxError as exc:
            out.append({"error": [f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1]})
            continue
        except (RecursionError, MemoryError, ValueError) as exc:
            out.append({"error": [f"{type(exc).__name__}: {exc}", 1, 1]})
            continue
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        out.append({"findings": [dataclasses.asdict(f) for f in found], "lines": lines})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    _main()
