"""Shared output for subcommands: ``--json``, ``--markdown``, ``--plot`` and ``--quiet``, the
printed result (through ``report/terminal.py``), the progress bar and ``run``'s live figures.

Live output goes to stderr and only to a terminal: never into a pipe, a file or a CI log, and
never with ``--quiet``. It is fed from this process (the sampler's status file, the runs' call-
backs), so it costs the measured process nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from membound._errors import MemboundError, TargetError
from membound._files import write_atomic
from membound._units import format_size
from membound.report.sections import Result
from membound.report.terminal import renderable, result_text

__all__ = [
    "DEFAULT_TIMEOUT",
    "MESSAGE_CHARS",
    "SHOWN_CHARS",
    "Outputs",
    "cut_long",
    "emit",
    "heading",
    "keep_partial",
    "live_memory",
    "live_output",
    "output_options",
    "print_result",
    "progress",
    "progress_to_total",
    "show",
    "timeout_option",
    "writable_path",
    "write_output",
]


def writable_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check an output path before the run, so that a long measurement is not lost at the end:
    the folder must exist and take a new file (tried for real: a read-only mount, a folder of
    another user and a full inode table all refuse it; ``os.access`` misses some of them)."""
    if value is None:
        return None
    if value.startswith("-"):
        # An option that takes a file swallows the word after it: ``--json -- cmd`` wrote a
        # file named ``--`` and ``--json -`` one named ``-``, in silence.
        raise click.BadParameter(
            f"{value}: expected a file name, not an option (a file whose name begins "
            f"with '-' is written ./{value})",
            ctx=ctx,
            param=param,
        )
    with contextlib.suppress(OSError):
        if not stat.S_ISREG(os.stat(value).st_mode) and not os.path.isdir(value):
            return value  # a stream (/dev/stdout, a FIFO): written in place, at the end
    folder = Path(value).resolve().parent
    if not folder.is_dir():
        raise MemboundError(f"cannot write {value}: folder {folder} does not exist")
    probe = folder / f".membound-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise MemboundError(f"cannot write {value}: {exc.strerror or exc}") from None
    return value


class Outputs:
    """The files a command writes, each whole or not at all (a full disk leaves an old file as
    it was, never a truncated one).

    A file that cannot be written stops neither the next file nor the printing of the result:
    call :meth:`finish` once the result is on stdout, and it raises the failures as one line
    naming each path and the system's reason (exit 2).
    """

    def __init__(self) -> None:
        self.written: list[str] = []
        self.failed: list[str] = []

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path``."""
        try:
            write_atomic(path, data)
        except OSError as exc:
            self._fail(path, exc)
        else:
            self.written.append(path)

    def chart(self, result: Result, path: str) -> None:
        """Draw ``result``'s PNG chart to ``path``."""
        from membound.report.chart import chart

        try:
            chart(result, path)
        except (OSError, ImportError) as exc:  # ImportError: no matplotlib (extra "plot")
            self._fail(path, exc)
        else:
            self.written.append(path)

    def html(self, results: Sequence[Result], path: str) -> None:
        """Write ``results`` as one self-contained HTML page to ``path``."""
        from membound.report.html import HtmlReporter

        page = io.StringIO()
        HtmlReporter(results).render(page)
        self.write(path, page.getvalue().encode("utf-8"))

    def _fail(self, path: str, exc: OSError | ImportError) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.failed.append(f"cannot write {path}: {reason or type(exc).__name__}")

    def finish(self, *, say: bool = True) -> None:
        """Say what was written (unless not ``say``); then raise what was not.

        Raises:
            MemboundError: a file could not be written.
        """
        for path in self.written if say else ():
            click.echo(f"wrote {path}", err=True)
        if self.failed:
            raise MemboundError("; ".join(self.failed))


def write_output(path: str, data: bytes) -> None:
    """Write one output file (see :class:`Outputs`).

    Raises:
        MemboundError: one line naming ``path`` and the system's reason.
    """
    files = Outputs()
    files.write(path, data)
    files.finish()


#: The default time limit of each run of ``compare``, ``scale`` and ``leaks``: 30 minutes.
DEFAULT_TIMEOUT = 1800.0


def seconds_option(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A positive, finite number of seconds (``nan`` and ``inf`` parse as floats: refuse them)."""
    if value is None:
        return None
    # Imported here: the measuring engine is most of a command's start-up, and `lint` or
    # `report` never measure (0.1 s of each start).
    from membound.measure.isolate.outcome import check_timeout

    try:
        check_timeout(value)
    except TargetError as exc:
        raise click.BadParameter(
            str(exc).replace("timeout ", "", 1), ctx=ctx, param=param
        ) from None
    return value


def where_option(
    whose: str, *, end: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--where[=python|native]`` option: name the lines that held ``whose`` peak (and,
    with ``end``, what was still held at the end)."""
    also = " (and what was held at the end)" if end else ""
    return click.option(
        "--where",
        type=click.Choice(["python", "native"]),
        is_flag=False,
        flag_value="python",
        default=None,
        help=f"Also show which lines held {whose} peak{also}; "
        "--where=native names native code too (memray).",
    )


def timeout_option(
    default: float | None, what: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--timeout SECONDS`` option: ``what`` is stopped after that long (exit 1 or 2)."""
    shown = f" [default: {default:g} s, 30 minutes]" if default == DEFAULT_TIMEOUT else ""
    return click.option(
        "--timeout",
        type=float,
        default=default,
        callback=seconds_option,
        help=f"Stop {what} after this many seconds.{shown}",
    )


_QUIET = "membound.quiet"
#: The live line's label is cut to this many characters at most: the figures must fit on one line.
_LIVE_LABEL = 40


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"


#: The most of a traceback or message from the measured code that is printed: a child's
#: exception can carry megabytes (its head and its tail are shown, and how much was cut).
SHOWN_CHARS = 4096
#: The most of an error's one line that is printed.
MESSAGE_CHARS = 2048


def cut_long(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to about ``limit`` characters: its start and its end (where a traceback
    names the exception), and between them how many characters were left out."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = limit - tail
    cut = len(text) - head - tail
    return f"{text[:head]} … [{cut:,} characters cut] … {text[-tail:]}"


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_QUIET] = True
    return value


def live_output() -> bool:
    """Whether live progress may be drawn: stderr is a terminal and ``--quiet`` was not given."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_QUIET):
        return False
    return sys.stderr.isatty() and Console(stderr=True).is_terminal


def output_options(func: Any) -> Any:
    """The ``--json PATH``, ``--markdown``, ``--html PATH``, ``--plot PATH`` and ``--quiet``
    options."""
    func = click.option(
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_quiet,
        help="No live progress on stderr (it is off anyway when stderr is not a terminal).",
    )(func)
    func = click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False),
        callback=writable_path,
        help="Write a PNG chart here.",
    )(func)
    func = click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False),
        callback=writable_path,
        help="Write the result as one self-contained HTML page here (as `membound report --html`).",
    )(func)
    func = click.option(
        "--markdown", is_flag=True, help="Print a Markdown table instead of a terminal table."
    )(func)
    func = click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False),
        callback=writable_path,
        help="Write the JSON result here.",
    )(func)
    return func


def show(result: Result) -> None:
    """Print ``result``: rich tables on a terminal, plain lines on a pipe or in a file."""
    console = Console()
    if console.is_terminal:
        console.print(renderable(result))
    else:
        click.echo(result_text(result), nl=False)


def heading(title: str) -> None:
    """A heading above a group of results: a rule on a terminal, a Markdown heading elsewhere."""
    console = Console()
    if console.is_terminal:
        console.rule(f"[bold]{escape(title)}")
    else:
        click.echo(f"\n## {title}\n")


def print_result(result: Result, *, markdown: bool) -> None:
    """Print ``result``: Markdown, or a table (see :func:`show`)."""
    if markdown:
        click.echo(result.to_markdown(), nl=False)
    else:
        show(result)


def emit(
    result: Result,
    *,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None = None,
) -> None:
    """Write the files asked for, then print ``result``.

    The files come first, so that nothing shown afterwards (into a pipe that closes) can lose
    them; a file that cannot be written is named once the result is printed (:class:`Outputs`).

    Raises:
        MemboundError: a file could not be written.
    """
    files = Outputs()
    if json_path:
        from membound.report.json import dumps

        files.write(json_path, (dumps(result) + "\n").encode("utf-8"))
    if plot_path:
        files.chart(result, plot_path)
    if html_path:
        files.html([result], html_path)
    print_result(result, markdown=markdown)
    files.finish()


def keep_partial(
    stop: KeyboardInterrupt,
    *,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None = None,
) -> None:
    """After Ctrl-C: print and write what finished (an :class:`Interrupted` carries it). A file
    that cannot be written is named in a line; the interrupt stays what ends the command."""
    partial = getattr(stop, "partial", None)
    finished = getattr(stop, "finished", "")
    if partial is None:
        click.echo(f"membound: interrupted; {finished or 'nothing finished'}: no result", err=True)
        return
    click.echo(f"membound: interrupted; {finished}: the result below is of those", err=True)
    try:
        emit(
            partial,
            json_path=json_path,
            markdown=markdown,
            plot_path=plot_path,
            html_path=html_path,
        )
    except MemboundError as exc:
        click.echo(f"membound: error: {exc}", err=True)


@contextlib.contextmanager
def progress(total: int, what: str) -> Iterator[Any]:
    """A progress bar on stderr (only on a terminal); yields ``advance(description)``."""
    # rich's progress and live views are imported where drawn: every command's start-up
    # would pay for them (11 ms), most runs draw neither (a pipe, a CI log).
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not live_output(),
    )
    with bar:
        task = bar.add_task(what, total=total)
        started = False

        def advance(description: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            # Cut so that the count, elapsed time and ETA stay on the line.
            room = max(12, console.width - 50)
            bar.update(task, description=escape(_cut(description, room)))

        yield advance
        bar.update(task, completed=total)


@contextlib.contextmanager
def live_memory(
    label: str, limit: int | None
) -> Iterator[Callable[[float, int, int], None] | None]:
    """A one-line live view of a run on stderr (terminal only, not with ``--quiet``): elapsed
    time, current RSS, the peak so far and the limit. Yields the update function to hand to
    ``measure_command(on_progress=...)``, or None when nothing is drawn."""
    if not live_output():
        yield None
        return
    from rich.live import Live  # where drawn: see progress()

    console = Console(stderr=True)
    with Live(console=console, transient=True, refresh_per_second=4) as live:

        def update(seconds: float, rss: int, peak: int) -> None:
            bound = "no limit"
            if limit:
                bound = f"limit {format_size(limit)} ({peak / limit:.0%})"
            figures = (
                f"  {seconds:.1f} s  RSS {format_size(rss)}  peak {format_size(peak)}  {bound}"
            )
            # One line on any terminal: the label gives way to the figures.
            room = max(8, min(_LIVE_LABEL, console.width - len(figures) - 1))
            line = Text.assemble((_cut(label, room), "bold"), figures)
            live.update(line)

        yield update


@contextlib.contextmanager
def progress_to_total(total: int, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A bar for work that reports ``(done, planned)`` itself, as a leak hunt's rounds do
    (``planned`` grows when a run is lengthened); None when nothing is drawn."""
    if not live_output():
        yield None
        return
    from rich.progress import (  # where drawn: see progress()
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("round {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(escape(what), total=total)

        def update(done: int, planned: int) -> None:
            # Drawn now, not at the next 0.1 s refresh: rounds are few, and on a busy machine
            # the refresh thread can miss every one of a short hunt's rounds.
            bar.update(task, completed=done, total=planned, refresh=True)

        yield update
