"""``membound lint PATH...``: find memory anti-patterns statically (ruff-style interface).

Exit codes: 0 no findings, 1 findings (0 with ``--exit-zero``), 2 a usage or configuration error,
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
from membound.lint.output import (
    FORMATS,
    render,
    render_errors,
    render_json,
    render_sarif,
    render_statistics,
)

__all__ = ["command"]


#: The hint under an error in ``--select``/``--ignore``, or a selection that leaves no rule.
_SELECT_HINT = (
    "select rules by code prefix, e.g. --select MB1,MB201 (membound lint --help lists them)"
)
#: The hint under a bad ``--max-file-size``.
_SIZE_HINT = "give a size such as 10MB, 1.5MiB or a number of bytes (1 MB = 10^6 bytes)"


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
) -> LintConfig:
    config = _load(paths, config_path, isolated)
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
    "--config",
    "config_path",
    type=click.Path(),
    help="pyproject.toml to read [tool.membound.lint] from (default: found upward).",
)
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option(
    "--output-file",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report here instead of stdout.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the findings as JSON to this file.",
)
@click.option(
    "--max-file-size",
    metavar="SIZE",
    help="Skip (as MB000) files larger than this, e.g. 10MB, 1.5MiB, 20000000  [default: 10MB, "
    "or max-file-size from the configuration]",
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
    config_path: str | None,
    isolated: bool,
    output_file: str | None,
    json_path: str | None,
    max_file_size: str | None,
    jobs: int,
) -> int:
    """Find memory anti-patterns in Python files (default: the current directory).

    \b
    MB101 unbounded-queryset           MB201 accumulator-in-streaming-loop
    MB102 unbounded-fetch              MB202 materialized-range
    MB103 whole-file-then-iterate      MB301 unbounded-cache
    MB104 dataframe-without-chunks     MB302 memoized-query-result
    MB401 resource-per-call            MB402 loop-invariant-deepcopy
    MB501 full-rows-for-one-column

    Silence one line with "# noqa: MB201", a whole file with a line "# membound: noqa".
    Rule pages: docs/rules/MBxxx.md.
    """
    inputs = paths or (".",)
    config = _config(inputs, config_path, isolated, select, ignore, max_file_size)
    result = lint_paths(inputs, config, jobs=jobs or os.cpu_count() or 1)
    if statistics:
        report = render_statistics(result)
    elif fmt == "sarif":
        report = render_sarif(result, version=__version__)
    else:
        report = render(result, fmt)
    # surrogateescape: a file name that is not UTF-8 (``\udcff`` in the str) is written back as
    # its original bytes, as on stdout, instead of failing the whole run at the very end.
    if output_file:
        Path(output_file).write_text(report, encoding="utf-8", errors="surrogateescape")
    else:
        click.echo(report, nl=False)
    if json_path:
        Path(json_path).write_text(render_json(result), encoding="utf-8", errors="surrogateescape")
    if fmt != "github" and result.errors:
        click.echo(render_errors(result), err=True, nl=False)
    if not result.files_checked and not result.errors:
        click.echo("membound lint: no Python files found", err=True)
    if result.all_failed:
        return 2
    if result.findings and not exit_zero:
        return 1
    return 0
