"""``membound lint PATH...``: find memory anti-patterns statically (ruff-style interface).

Exit codes: 0 no findings, 1 findings or a file that could not be checked (MB000; 0 with
``--exit-zero``), 2 a usage or configuration error,
or no input file could be checked at all. Errors in the settings (a bad ``--select``, ``--ignore``
or ``--max-file-size``, or the same in ``[tool.membound.lint]``) are one ``membound: error:`` line
and a hint, never click's usage banner: the message names the option, which is all the banner
would add.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from membound._errors import MemboundError
from membound._version import __version__
from membound.cli.lint_sizes import with_sizes
from membound.cli.output import Outputs, writable_path, write_output
from membound.lint.config import (
    ConfigError,
    LintConfig,
    check_selection,
    find_config,
    load_config,
    normalise_selectors,
    parse_max_file_size,
)
from membound.lint.engine import ALL_CODES, lint_paths
from membound.lint.findings import LintResult
from membound.lint.output import (
    FORMATS,
    render,
    render_errors,
    render_json,
    render_sarif,
    render_statistics,
)
from membound.lint.rewrite import rewrite_paths, unified_diff

__all__ = ["command"]


#: The hint under an error in ``--select``/``--ignore``, or a selection that leaves no rule.
_SELECT_HINT = (
    "select rules by code prefix, e.g. --select MB1,MB201 (membound lint --help lists them)"
)
#: The hint under a bad ``--max-file-size``.
_SIZE_HINT = "give a size such as 10MB, 1.5MiB or a number of bytes (1 MB = 10^6 bytes)"


def _encoded(report: str) -> bytes:
    # surrogateescape: a file name that is not UTF-8 (``\udcff`` in the str) is written back as
    # its original bytes, as on stdout, instead of failing the whole run at the very end.
    return report.encode("utf-8", errors="surrogateescape")


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    # Accept both ``--select MB1,MB201`` and ``--select MB1 --select MB201``. Empty parts are
    # kept, so that ``--select ""`` or ``--select MB1,`` is refused instead of running less.
    return tuple(part for value in values for part in value.split(","))


def _load(paths: tuple[str, ...], config_path: str | None, isolated: bool) -> LintConfig:
    # A broken configuration file is not a usage error: say which file and what is wrong in one
    # line, with a hint, rather than click's usage banner.
    if isolated:
        return LintConfig()
    try:
        found = Path(config_path) if config_path else find_config(paths)
        return load_config(found, ALL_CODES) if found else LintConfig()
    except ConfigError as exc:
        hint = (
            "check the file given to --config"
            if config_path
            else "fix that file, or run with --isolated to ignore configuration files"
        )
        raise MemboundError(str(exc), hint=hint) from None


def _config(
    paths: tuple[str, ...],
    config_path: str | None,
    isolated: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    max_file_size: str | None,
    preview: bool = False,
) -> LintConfig:
    config = _load(paths, config_path, isolated)
    if preview:
        config = dataclasses.replace(config, preview=True)
    try:
        chosen = (
            normalise_selectors(_split(select), ALL_CODES, "--select") if select else config.select
        )
        ignored = config.ignore + normalise_selectors(_split(ignore), ALL_CODES, "--ignore")
        # What finally runs is checked, not each source alone: --select may rescue settings that
        # select nothing, and --ignore may empty settings that select something.
        from_file = config.source is not None and (not select or bool(config.ignore))
        origin = f" (with settings from {config.source})" if from_file else ""
        check_selection(chosen, ignored, ALL_CODES, origin)
    except ConfigError as exc:
        raise MemboundError(str(exc), hint=_SELECT_HINT) from None
    try:
        size = (
            config.max_file_size
            if max_file_size is None
            else parse_max_file_size(max_file_size, "--max-file-size")
        )
    except ConfigError as exc:
        raise MemboundError(str(exc), hint=_SIZE_HINT) from None
    return dataclasses.replace(config, select=chosen, ignore=ignored, max_file_size=size)


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(readable=False))
@click.option(
    "--select", multiple=True, metavar="CODES", help="Rule code prefixes to run, e.g. MB1,MB201."
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule code prefixes not to run.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--exit-zero", is_flag=True, help="Exit with 0 even when there are findings.")
@click.option("--statistics", is_flag=True, help="Show the number of findings per rule.")
@click.option(
    "--hints",
    "show_hints",
    is_flag=True,
    help="List the hints too: whole-table loads nothing shows to be big (never findings, never "
    "in the exit code; without this flag one line counts them).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    help="pyproject.toml to read [tool.membound.lint] from (default: found upward).",
)
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option(
    "--output-file",
    "-o",
    type=click.Path(dir_okay=False),
    callback=writable_path,
    help="Write the report here instead of stdout.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    callback=writable_path,
    help="Also write the findings as JSON to this file.",
)
@click.option(
    "--max-file-size",
    metavar="SIZE",
    help="Skip (as MB000) files larger than this, e.g. 10MB, 1.5MiB, 20000000  [default: 10MB, "
    "or max-file-size from the configuration]",
)
@click.option(
    "--preview", is_flag=True, help="Also run preview rules and preview variants of rules."
)
@click.option(
    "--fix", is_flag=True, help="Apply safe fixes to the files, then report what is left."
)
@click.option(
    "--unsafe-fixes",
    is_flag=True,
    help="With --fix or --diff, apply unsafe fixes too (they may change behaviour: review).",
)
@click.option(
    "--diff",
    is_flag=True,
    help="Print the fixes as a unified diff instead of writing them (exit 1 if any).",
)
@click.option(
    "--add-noqa",
    is_flag=True,
    help="Add '# noqa: CODE' to every line with a finding, so that only new ones fail.",
)
@click.option(
    "--db",
    metavar="URL",
    help="Read table sizes (row estimates) read-only from this database: postgresql://... or "
    "sqlite:///file. Loads of small tables are then not reported; of big ones, everywhere.",
)
@click.option(
    "--sizes",
    "sizes_path",
    metavar="FILE",
    help="Read table sizes from this file (written by --write-sizes; default: sizes in "
    "[tool.membound.lint]).",
)
@click.option(
    "--write-sizes",
    "write_sizes",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="With --db: write the sizes read to FILE (to commit, for CI) and stop.",
)
@click.option(
    "--small-table-rows",
    type=click.IntRange(min=0),
    metavar="N",
    help="Tables with fewer rows are small  [default: 10000, or small-table-rows]",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Worker processes (0: one per CPU).",
)
def command(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    fmt: str,
    exit_zero: bool,
    statistics: bool,
    show_hints: bool,
    config_path: str | None,
    isolated: bool,
    output_file: str | None,
    json_path: str | None,
    max_file_size: str | None,
    preview: bool,
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    add_noqa: bool,
    db: str | None,
    sizes_path: str | None,
    write_sizes: str | None,
    small_table_rows: int | None,
    jobs: int,
) -> int:
    """Find memory anti-patterns in Python files (default: the current directory).

    \b
    MB101 unbounded-queryset                MB201 accumulator-in-streaming-loop
    MB102 unbounded-fetch                   MB202 materialized-range (preview)
    MB103 whole-file-then-iterate (preview) MB301 unbounded-cache (preview)
    MB104 dataframe-without-chunks          MB302 memoized-query-result
    MB401 resource-per-call                 MB402 loop-invariant-deepcopy (preview)
    MB501 full-rows-for-one-column
    A load of a whole table is a finding only with evidence that the table is big
    (--db, --sizes, large-models, or a table the framework appends to on every event);
    without it, a hint in batch code (--hints lists them). --preview adds the preview
    rules and variants.

    Silence one line with "# noqa: MB201", a whole file with a line "# membound: noqa";
    --add-noqa writes those comments for every current finding. --fix applies the safe fixes,
    --diff shows them, --unsafe-fixes adds the ones that need review.
    Rule pages: docs/rules/MBxxx.md.
    """
    inputs = paths or (".",)
    if add_noqa and (fix or diff or unsafe_fixes):
        raise click.UsageError("--add-noqa cannot be combined with --fix, --diff or --unsafe-fixes")
    if unsafe_fixes and not (fix or diff):
        raise click.UsageError("--unsafe-fixes needs --fix or --diff")
    config = _config(inputs, config_path, isolated, select, ignore, max_file_size, preview)
    config, done = with_sizes(config, db, sizes_path, write_sizes, small_table_rows)
    if done:
        return 0
    if fix or diff or add_noqa:
        return _rewrite(
            inputs,
            config,
            add_noqa=add_noqa,
            diff=diff,
            unsafe=unsafe_fixes,
            fmt=fmt,
            exit_zero=exit_zero,
            output_file=output_file,
        )
    result = lint_paths(inputs, config, jobs=jobs or os.cpu_count() or 1)
    if not show_hints:
        result = dataclasses.replace(result, hints=(), hints_not_shown=len(result.hints))
    if statistics:
        report = render_statistics(result)
    elif fmt == "sarif":
        report = render_sarif(result, version=__version__)
    else:
        report = render(result, fmt)
    # Each file is written whole or not at all (a full disk leaves no truncated SARIF behind);
    # one that cannot be written is named after the rest is done (exit 2).
    files = Outputs()
    if output_file:
        files.write(output_file, _encoded(report))
    else:
        click.echo(report, nl=False)
    if json_path:
        files.write(json_path, _encoded(render_json(result)))
    for note in result.notes:
        click.echo(note, err=True)
    if fmt != "github" and result.errors:
        click.echo(render_errors(result), err=True, nl=False)
    files.finish(say=False)  # quiet on success, as linters are
    if not result.files_checked and not result.errors:
        click.echo("membound lint: no Python files found", err=True)
    if result.all_failed:
        return 2
    if (result.findings or result.errors) and not exit_zero:
        return 1  # a file that could not be checked is a finding too (MB000)
    return 0


def _rewrite(
    inputs: tuple[str, ...],
    config: LintConfig,
    *,
    add_noqa: bool,
    diff: bool,
    unsafe: bool,
    fmt: str,
    exit_zero: bool,
    output_file: str | None,
) -> int:
    """``--fix``, ``--diff`` and ``--add-noqa``: rewrite (or show), then report what is left."""
    done = rewrite_paths(
        inputs, config, mode="noqa" if add_noqa else "fix", unsafe=unsafe, write=not diff
    )
    errors = LintResult((), done.errors, done.files_checked, 0)
    if diff:
        click.echo("".join(unified_diff(c) for c in done.changes), nl=False)
        fixes = sum(c.count for c in done.changes)
        click.echo(
            f"Would fix {fixes} finding{'s' if fixes != 1 else ''} in "
            f"{len(done.changes)} file{'s' if len(done.changes) != 1 else ''}.",
            err=True,
        )
    elif add_noqa:
        lines = sum(c.count for c in done.changes)
        click.echo(
            f"Added {lines} noqa directive{'s' if lines != 1 else ''} in "
            f"{len(done.changes)} file{'s' if len(done.changes) != 1 else ''}.",
            err=True,
        )
    else:
        fixed = sum(c.count for c in done.changes)
        left = LintResult(done.remaining, (), done.files_checked, 0)
        report = render(left, fmt) if fmt != "sarif" else render_sarif(left, version=__version__)
        if output_file:
            write_output(output_file, _encoded(report))
        else:
            click.echo(report, nl=False)
        click.echo(
            f"Fixed {fixed} finding{'s' if fixed != 1 else ''} in {len(done.changes)} "
            f"file{'s' if len(done.changes) != 1 else ''}; {len(done.remaining)} left.",
            err=True,
        )
    if done.errors:
        click.echo(render_errors(errors), err=True, nl=False)
    if errors.all_failed:
        return 2
    if exit_zero:
        return 0
    if diff:
        return 1 if done.changes else 0
    return 1 if done.remaining else 0
