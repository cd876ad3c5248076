"""IPython/Jupyter magics: ``%load_ext membound``, then

* ``%membound [options] statement`` and ``%%membound [options]`` — run the code in the kernel
  under :func:`membound.track`: peak RSS Δ, the heap peak with ``--heap`` (``--heap=memray``
  for memray's engine), duration and the growth verdict, with a chart where matplotlib is
  installed. Options: ``--heap[=tracemalloc|memray]``, ``--label NAME``, ``--interval S``,
  ``--where[=native]`` (the lines that held the peak).
* ``%%membound_compare [--repeat N] [--heap] [--timeout S]`` — the cell's variants, each opened
  by a line ``# --- name`` (lines before the first are setup), each run in a fresh process.
* ``%membound_scale f --sizes 1000,10000,100000`` — how ``f(n)``'s peak grows with ``n``.
* ``%membound_leaks f`` — whether ``f()`` keeps memory per call.

Every magic returns the usual result object (``Measurement``, ``Comparison``, ``Complexity``,
``LeakReport``), so ``_`` holds it and Jupyter shows its HTML. Functions defined in the notebook
live in ``__main__``, which a fresh process cannot import: they are shipped by value
(cloudpickle, ``measure/target.py``); ``--in-kernel`` runs in the kernel instead, with a printed
caveat (the kernel's own memory and caches then count). Bad options and membound's errors are
one line (``UsageError``); an exception from the measured code shows its traceback as usual.

The argument parsing of the code-running magics is written here rather than with IPython's
``magic_arguments``: the statement after the options is Python, which argparse would read as
more options (``%membound x = -1``); only the leading ``--name[=value]`` words are options.
"""

from __future__ import annotations

import difflib
import re
import shlex
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from membound._errors import MemboundError
from membound._units import parse_size
from membound.judge.compare import compare
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.inprocess import padded
from membound.measure.track import track
from membound.notebook.progress import LiveProgress
from membound.notebook.variants import (
    ship_names,
    split_cell,
    used_names,
    variant_outputs,
    write_scenarios,
)
from membound.results import Comparison, Complexity, LeakReport, Measurement

__all__ = ["MemboundMagics", "load_ipython_extension", "parse_leading_options"]

_OPTION_NAME = re.compile(r"--(?P<name>[a-z][a-z-]*)(?P<eq>=)?")
#: A quoted option value: "two words" or 'two words' (a backslash escapes in double quotes).
_QUOTED = re.compile(r'"(?P<double>(?:[^"\\]|\\.)*)"|\'(?P<single>[^\']*)\'')

#: Options of ``%membound``: name → whether it takes a value (None: an optional ``=value``).
_RUN_OPTIONS: dict[str, bool | None] = {
    "heap": None,
    "label": True,
    "interval": True,
    "where": None,
}
_HEAP_ENGINES = ("tracemalloc", "memray")

IN_KERNEL_CAVEAT = (
    "membound: measured in the kernel, not a fresh process: the kernel's output history and "
    "caches count too, and memory it freed before is reused unseen, so RSS can read far lower "
    "than in a fresh process (--metric heap, or --heap, sees Python objects exactly)"
)

#: The Python API's words in membound's hints, and what a magic's user types instead.
_API_TO_MAGIC = (
    ("pass isolate=False", "add --in-kernel"),
    ("or pass isolate=False", "or add --in-kernel"),
    ("or fewer rounds", "or fewer --rounds"),
)


def parse_leading_options(
    line: str, known: dict[str, bool | None]
) -> tuple[dict[str, str | None], str]:
    """The ``--name[=value]`` options at the start of ``line`` and the rest of it, unchanged.

    ``known`` maps each option to True (needs a value: ``--label x`` or ``--label=x``), False
    (a flag) or None (a flag with an optional ``=value``). ``--`` ends the options.

    Raises:
        UsageError: an unknown option, or one missing its value.
    """
    options: dict[str, str | None] = {}
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if line.startswith("--", pos) and (pos + 2 == len(line) or line[pos + 2].isspace()):
            return options, line[pos + 2 :].strip()
        found = _OPTION_NAME.match(line, pos)
        after = found.end() if found else pos
        if not found or not (found.group("eq") or after == len(line) or line[after].isspace()):
            return options, line[pos:].strip()
        name = found.group("name")
        if name not in known:
            raise UsageError(unknown_option(f"--{name}", [f"--{k}" for k in known]))
        pos = after
        value: str | None = None
        if found.group("eq"):
            value, pos = _value_at(line, pos, name)
        elif known[name] is True:
            while pos < len(line) and line[pos].isspace():
                pos += 1
            if pos == len(line):
                raise UsageError(f"--{name} needs a value")
            value, pos = _value_at(line, pos, name)
        if known[name] is False and value is not None:
            raise UsageError(f"--{name} takes no value")
        options[name] = value


def _value_at(line: str, pos: int, name: str) -> tuple[str, int]:
    """The option value at ``pos`` (a word, or a quoted text with spaces) and where it ends."""
    if pos < len(line) and line[pos] in "\"'":
        quoted = _QUOTED.match(line, pos)
        if quoted is None:
            raise UsageError(f"--{name}: the quote that opens its value is not closed")
        double = quoted.group("double")
        text = re.sub(r"\\(.)", r"\1", double) if double is not None else quoted.group("single")
        return text, quoted.end()
    word = re.compile(r"\S+").match(line, pos)
    if word is None:
        raise UsageError(f"--{name}= needs a value")
    return word.group(), word.end()


def unknown_option(given: str, known: list[str]) -> str:
    """The one line for a mistyped option: it, the closest known one, and all of them."""
    close = difflib.get_close_matches(given, known, n=1)
    guess = f"; did you mean {close[0]}?" if close else ""
    return f"unknown option {given}{guess} (options: {', '.join(known)})"


def _parsed(magic: Any, line: str) -> Any:
    """``parse_argstring``, after naming a mistyped option: argparse would otherwise report a
    required option as missing (``--sizez`` read as "required: --sizes")."""
    known = [o for o in magic.parser._option_string_actions if o.startswith("--")]
    try:
        words = shlex.split(line)
    except ValueError:  # an unclosed quote: parse_argstring says so
        words = []
    for word in words:
        given = word.split("=", 1)[0]
        if given.startswith("--") and len(given) > 2 and given not in known:
            raise UsageError(unknown_option(given, known))
    return parse_argstring(magic, line)


def _heap_engine(options: dict[str, str | None]) -> bool | str:
    if "heap" not in options:
        return False
    engine = options["heap"]
    if engine is None:
        return True
    if engine not in _HEAP_ENGINES:
        raise UsageError(f"--heap={engine}: expected --heap, --heap=tracemalloc or --heap=memray")
    return engine


def _where(options: dict[str, str | None]) -> bool | str:
    if "where" not in options:
        return False
    mode = options["where"]
    if mode is None:
        return True
    if mode not in ("python", "native"):
        raise UsageError(f"--where={mode}: expected --where, --where=python or --where=native")
    return mode


def _interval(text: str | None) -> float:
    try:
        value = float(text) if text is not None else 0.01
    except ValueError:
        raise UsageError(f"--interval={text}: expected seconds, e.g. 0.01") from None
    if not 0 < value <= 60:
        raise UsageError(f"--interval={text}: expected more than 0 and at most 60 seconds")
    return value


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(part.replace("_", ""))) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--sizes {text}: expected whole numbers, e.g. 1000,10000,100000"
        ) from None
    if len(sizes) < 3 or any(n < 1 for n in sizes):
        raise UsageError(f"--sizes {text}: expected at least 3 sizes, each 1 or more")
    return sizes


def _membound_errors(run: Callable[[], Any]) -> Any:
    """Run ``run``; membound's own errors become one line (``UsageError``), not a traceback.

    When the measured code failed in a fresh process, its traceback (from that process) is
    printed first: the one line says what happened, the traceback where.
    """
    __tracebackhide__ = True
    try:
        return run()
    except MemboundError as exc:
        child_traceback = getattr(exc, "traceback", "")
        if child_traceback:
            print(child_traceback.rstrip(), file=sys.stderr)
        hint = getattr(exc, "hint", "") or ""
        for api, magic in _API_TO_MAGIC:
            hint = hint.replace(api, magic)
        raise UsageError(f"{exc}" + (f" ({hint})" if hint else "")) from None


@magics_class
class MemboundMagics(Magics):
    """The membound magics; registered by ``%load_ext membound``."""

    @property
    def _ip(self) -> Any:
        """The running shell (typed loosely: IPython's own annotations say it may be None)."""
        if self.shell is None:
            raise UsageError("the membound magics need a running IPython")
        return self.shell

    def _function(self, name: str) -> Callable[..., Any]:
        """The notebook's callable of that name (a dotted path is looked up from a name)."""
        head, *rest = name.split(".")
        if head not in self._ip.user_ns:
            raise UsageError(f"{name!r} is not defined in the notebook")
        obj = self._ip.user_ns[head]
        for part in rest:
            obj = getattr(obj, part, None)
        if not callable(obj):
            raise UsageError(f"{name!r} is not a function")
        return obj  # type: ignore[no-any-return]

    def _compile(self, code: str) -> Any:
        """The code compiled as IPython compiles a cell: its magics and shell escapes
        transformed, its source kept (``linecache``) so a traceback shows the user's lines.

        Raises:
            UsageError: the code does not parse (one line, as a variant's syntax error is).
        """
        transformed = self._ip.transform_cell(code)
        try:
            tree = self._ip.compile.ast_parse(transformed)
        except SyntaxError as exc:
            raise UsageError(f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
        filename = self._ip.compile.cache(transformed, raw_code=code)
        return self._ip.compile(tree, filename, "exec")

    def _run_in_kernel(
        self, code: str, label: str, heap: bool | str, interval: float, where: bool | str
    ) -> Any:
        __tracebackhide__ = True  # the user's error shows the user's frames, not membound's
        compiled = self._compile(code)
        tracker = track(label, heap=heap, interval=interval, where=where)  # type: ignore[arg-type]
        try:
            with tracker:
                padded(exec, compiled, self._ip.user_global_ns, self._ip.user_ns)
        except Exception as exc:
            raise _without_membound_frames(exc)  # noqa: B904 - the same error, fewer frames
        return tracker.result

    @line_cell_magic
    def membound(self, line: str, cell: str | None = None) -> Measurement | None:
        """Measure a statement (``%membound``) or the cell (``%%membound``) in the kernel.

        Options: ``--heap`` (tracemalloc) or ``--heap=memray``, ``--label NAME``,
        ``--interval SECONDS`` (the timeline's sampling interval, default 0.01), ``--where``
        (the cell's lines that held the peak) or ``--where=native`` (native code too).
        """
        __tracebackhide__ = True
        options, statement = parse_leading_options(line, _RUN_OPTIONS)
        code = cell if cell is not None else statement
        if cell is not None and statement:
            raise UsageError(f"%%membound takes options only, not {statement!r}")
        if not code.strip():
            raise UsageError("nothing to measure: give a statement, or use %%membound on a cell")
        heap = _heap_engine(options)
        label = options.get("label") or ("cell" if cell is not None else statement[:60])
        interval = _interval(options.get("interval"))
        where = _where(options)

        def run() -> Measurement | None:
            __tracebackhide__ = True
            result: Measurement | None = self._run_in_kernel(code, label, heap, interval, where)
            return result

        measured: Measurement | None = _membound_errors(run)
        return measured

    @magic_arguments()
    @argument("--repeat", type=int, default=3, help="runs per variant (default 3)")
    @argument("--heap", action="store_true", help="also trace the Python heap")
    @argument(
        "--where",
        nargs="?",
        const="python",
        default=None,
        choices=("python", "native"),
        help="also show the lines that held each variant's peak (native: native code too)",
    )
    @argument("--timeout", type=float, default=None, help="seconds per run")
    @argument("--in-kernel", action="store_true", help="run in the kernel, not fresh processes")
    @cell_magic
    def membound_compare(self, line: str, cell: str) -> Comparison:
        """Compare the cell's variants, each opened by ``# --- name``, each in a fresh process
        (lines before the first variant are setup, run before each variant's baseline)."""
        args = _parsed(self.membound_compare, line)
        if args.repeat < 1:
            raise UsageError("--repeat must be at least 1")

        live = LiveProgress(self._ip, "membound_compare")
        done = [0]

        def on_run(name: str, index: int) -> None:
            done[0] += 1
            live.step(f"run {done[0]} of {total[0]}: {name} (run {index + 1})")

        total = [0]

        def run() -> Comparison:
            setup, variants = split_cell(cell)
            total[0] = (args.repeat + (1 if args.where else 0)) * len(variants)
            if args.in_kernel:
                self._ip.run_cell(setup, silent=True)
                scenarios: dict[str, Any] = {
                    v.name: _in_kernel_variant(self._ip, v.code) for v in variants
                }
                return compare(
                    scenarios,
                    repeat=args.repeat,
                    isolate=False,
                    heap=args.heap,
                    where=args.where or False,
                    on_run=on_run,
                )
            shipped = ship_names(used_names(setup, *(v.code for v in variants)), self._ip.user_ns)
            with tempfile.TemporaryDirectory(prefix="membound-cell-") as tmp:
                targets = write_scenarios(Path(tmp), setup, variants, shipped)
                try:
                    return compare(
                        targets,
                        repeat=args.repeat,
                        heap=args.heap,
                        timeout=args.timeout,
                        where=args.where or False,
                        on_run=on_run,
                    )
                finally:  # what the variants printed, also when one failed
                    for block in variant_outputs(Path(tmp), variants):
                        print(block)

        result: Comparison = _membound_errors(run)
        live.done(f"{done[0]} runs done")
        if args.in_kernel:  # after the run: a caveat on figures, not on a refused input
            print(IN_KERNEL_CAVEAT, file=sys.stderr)
        return result

    @magic_arguments()
    @argument("function", help="a function of the notebook taking the size n")
    @argument("--sizes", required=True, help="comma-separated sizes, e.g. 1000,10000,100000")
    @argument("--repeat", type=int, default=3, help="runs per size (default 3)")
    @argument("--metric", choices=("rss", "heap"), default="rss", help="what to judge")
    @argument("--timeout", type=float, default=None, help="seconds per run")
    @argument("--in-kernel", action="store_true", help="run in the kernel, not fresh processes")
    @line_magic
    def membound_scale(self, line: str) -> Complexity:
        """How the peak of ``f(n)`` grows with ``n``: O(1) … O(n²)."""
        args = _parsed(self.membound_scale, line)
        func = self._function(args.function)
        sizes = _sizes(args.sizes)
        if args.repeat < 1:
            raise UsageError("--repeat must be at least 1")
        live = LiveProgress(self._ip, "membound_scale")
        runs = [0]

        def on_run(n: int, index: int) -> None:
            runs[0] += 1
            live.step(f"n = {n:,}, run {index + 1} ({runs[0]} runs so far)")

        result: Complexity = _membound_errors(
            lambda: complexity(
                func,
                sizes=sizes,
                metric=args.metric,
                repeat=args.repeat,
                isolate=not args.in_kernel,
                timeout=args.timeout,
                label=args.function,
                on_run=on_run,
            )
        )
        live.done(f"{runs[0]} runs over {len(sizes)} sizes done")
        if args.in_kernel:
            print(IN_KERNEL_CAVEAT, file=sys.stderr)
        return result

    @magic_arguments()
    @argument("function", help="a function of the notebook taking no arguments")
    @argument("--iterations", type=int, default=1000, help="calls judged (default 1000)")
    @argument("--warmup", type=int, default=50, help="calls before counting (default 50)")
    @argument("--rounds", type=int, default=10, help="rounds the calls are split in (default 10)")
    @argument("--tolerance", default=None, help="growth per call treated as noise, e.g. 64B")
    @argument("--timeout", type=float, default=None, help="seconds for the whole hunt")
    @argument("--in-kernel", action="store_true", help="hunt in the kernel, not a fresh process")
    @line_magic
    def membound_leaks(self, line: str) -> LeakReport:
        """Whether ``f()`` keeps memory per call, what keeps it and where it was allocated."""
        args = _parsed(self.membound_leaks, line)
        func = self._function(args.function)
        tolerance = None
        if args.tolerance is not None:
            tolerance = _membound_errors(lambda: parse_size(args.tolerance))
        live = LiveProgress(self._ip, "membound_leaks")
        rounds = [0]

        def on_round(done: int, planned: int) -> None:
            rounds[0] = done
            live.step(f"round {done} of {planned}")

        result: LeakReport = _membound_errors(
            lambda: find_leaks(
                func,
                on_round=on_round,
                iterations=args.iterations,
                warmup=args.warmup,
                rounds=args.rounds,
                tolerance=tolerance,
                isolate=not args.in_kernel,
                timeout=args.timeout,
                label=args.function,
            )
        )
        live.done(f"{rounds[0]} rounds done")
        if args.in_kernel:
            print(IN_KERNEL_CAVEAT, file=sys.stderr)
        return result


#: membound's own source folder: its frames are not shown in a user's traceback.
_OWN_FOLDER = str(Path(__file__).resolve().parents[1])


def _without_membound_frames(exc: BaseException) -> BaseException:
    """``exc`` with membound's frames (the tracker, ``padded``) cut from its traceback: the
    error the cell raised starts at the cell."""
    kept = []
    tb = exc.__traceback__
    while tb is not None:
        if not str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_OWN_FOLDER):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return exc.with_traceback(rebuilt)


def _in_kernel_variant(shell: Any, code: str) -> Callable[[], None]:
    compiled = shell.compile(
        shell.compile.ast_parse(shell.transform_cell(code)), "<variant>", "exec"
    )

    def run() -> None:
        exec(compiled, shell.user_global_ns, shell.user_ns)

    return run


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext membound``)."""
    ipython.register_magics(MemboundMagics)
