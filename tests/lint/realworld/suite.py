"""The real-code precision suite of ``membound lint``: real applications, their findings, labels.

Each application in ``apps.json`` is an sdist (or a wheel) from PyPI pinned by version and
sha256. It is downloaded once into ``benchmarks/.cache/realworld/`` (never committed), checked
against its hash and unpacked (``*.py`` files only). Its findings under the default settings
are matched against ``labels/<name>.tsv``: one line per finding, ``path  row  code  verdict
reason``, ``verdict`` ``true`` (a memory risk a demanding reviewer would want fixed) or
``false``, judged by reading the code as ``LABELLING.md`` says. A finding nobody labelled
counts as false.

Used by ``test_precision.py`` (``make test``) and ``benchmarks/bench_lint.py`` (the table in
README). ``python -m tests.lint.realworld.suite --todo`` prints the findings that have no label
yet, in the labels' format, for a person to judge.

A second set, ``unseen/apps.json`` with its labels in ``unseen/``, holds applications the rules
were measured on rather than tuned on (issue 25; ``unseen/README.md`` says which were looked at
when). It is too big to download in ``make test`` (about 170 MB): ``--unseen`` scores it, and
``make bench`` records its table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import hashlib
import io
import json
import os
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.call_graph import TEMPLATE_SUFFIXES
from membound.lint.engine import DEFAULT_CODES
from membound.lint.findings import Finding, LintResult
from membound.lint.sizes import read_sizes_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CACHE = Path(
    os.environ.get("MEMBOUND_REALWORLD_CACHE", REPO / "benchmarks" / ".cache" / "realworld")
)
#: The targets of the default rule set (issue 14): overall, and per rule with enough findings.
OVERALL_TARGET = 0.90
RULE_TARGET = 0.80
RULE_MIN_FINDINGS = 10


@dataclass(frozen=True)
class App:
    """One pinned application."""

    name: str
    version: str
    kind: str
    url: str
    sha256: str
    held_out: bool
    labels: str = "labels"
    """The folder of its labels, beside this file."""
    sizes: str = ""
    """A sizes file in that folder (``<name>-sizes.toml``) written from a judgement of a real
    deployment; empty when there is none."""

    @property
    def archive(self) -> Path:
        """Where the sdist is cached."""
        return CACHE / self.url.rsplit("/", 1)[-1]

    @property
    def root(self) -> Path:
        """Where its ``*.py`` files are unpacked."""
        return CACHE / f"{self.name}-{self.version}"


def apps(folder: str = "") -> list[App]:
    """The applications of the suite (or of the set in ``folder``: ``"unseen"``), in the order
    of its ``apps.json``; their labels are in ``labels/`` (or in that folder)."""
    data = json.loads((HERE / folder / "apps.json").read_text(encoding="utf-8"))
    out = []
    for entry in data["apps"]:
        fields = {**entry, "labels": entry.get("labels", folder or "labels")}
        sized = HERE / fields["labels"] / f"{entry['name']}-sizes.toml"
        fields.setdefault("sizes", sized.name if sized.exists() else "")
        out.append(App(**fields))
    return out


_FILES_HOST = "https://files.pythonhosted.org/packages/"
#: The same files as PyPI's JSON API links them on a proxied registry (seen on this machine).
_PYPI_PROXY = "https://pypi.org/packages/packages/"


def _download(app: App) -> bytes:
    urls = [app.url]
    if app.url.startswith(_FILES_HOST):
        urls.append(_PYPI_PROXY + app.url[len(_FILES_HOST) :])
    last: Exception | None = None
    data = b""
    for attempt in range(4):
        url = urls[attempt % len(urls)]
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
            break
        except OSError as exc:  # URLError is an OSError; retry a flaky network
            last = exc
            time.sleep(2 * (attempt + 1))
    else:
        raise RuntimeError(f"cannot download {app.url}: {last}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != app.sha256:
        raise RuntimeError(f"{app.url}: sha256 {digest}, expected {app.sha256}")
    return data


#: What is unpacked besides ``*.py``: templates (they call the code by name) and the files
#: at the top that mark a whole project (``lint/engine.py``, ``whole_project``).
_UNPACKED = (".py", *TEMPLATE_SUFFIXES)
_TOP_FILES = ("PKG-INFO", "pyproject.toml", "setup.cfg")
#: The marker's text: a cache unpacked by an earlier rule of what to keep is unpacked again.
_UNPACK_VERSION = "python, templates, project files\n"


def fetch(app: App) -> Path:
    """Download (once) and unpack (once) the ``*.py`` files and templates of ``app``; return
    its root."""
    marker = app.root / ".complete"
    if marker.exists() and marker.read_text(encoding="utf-8") == _UNPACK_VERSION:
        return app.root
    CACHE.mkdir(parents=True, exist_ok=True)
    data = None
    if app.archive.exists():
        cached = app.archive.read_bytes()
        if hashlib.sha256(cached).hexdigest() == app.sha256:
            data = cached
    if data is None:
        data = _download(app)
        app.archive.write_bytes(data)
    for name, read in _members(app.archive.name, data):
        # an sdist has one top folder, a wheel none
        parts = Path(name).parts[0 if app.archive.name.endswith(".whl") else 1 :]
        if not (name.endswith(_UNPACKED) or (len(parts) == 1 and parts[0] in _TOP_FILES)):
            continue
        if not parts or ".." in parts or Path(name).is_absolute():
            continue
        target = app.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read())
    marker.write_text(_UNPACK_VERSION, encoding="utf-8")
    return app.root


def _members(archive: str, data: bytes) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """The regular files of an sdist (``.tar.gz``) or a wheel (``.whl``, a zip): name and a
    reader of its bytes."""
    if archive.endswith(".whl"):
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            for info in wheel.infolist():
                if not info.is_dir():
                    yield info.filename, functools.partial(wheel.read, info)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as sdist:
        for member in sdist.getmembers():
            source = sdist.extractfile(member) if member.isfile() else None
            if source is not None:
                yield member.name, source.read


@dataclass(frozen=True)
class Label:
    """One labelled finding."""

    verdict: bool
    reason: str


Key = tuple[str, int, str]


def load_labels(app: App) -> dict[Key, Label]:
    """``labels/<name>.tsv`` as ``(path, row, code) -> Label`` (empty when there is none)."""
    path = HERE / app.labels / f"{app.name}.tsv"
    if not path.exists():
        return {}
    out: dict[Key, Label] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            verdict = row["verdict"].strip()
            if verdict not in ("true", "false"):
                raise ValueError(f"{path}: verdict must be true or false, not {verdict!r}")
            key = (row["path"], int(row["row"]), row["code"])
            out[key] = Label(verdict == "true", row["reason"])
    return out


def findings(app: App, *, preview: bool = False, sizes: bool = False) -> list[Key]:
    """The findings of the default settings (or with preview, or with the app's sizes file) on
    ``app``, as label keys. Hints are not findings (``hints``)."""
    return _keys(app, _lint(app, preview, sizes).findings)


def hints(app: App, *, sizes: bool = False) -> list[Key]:
    """The hints of the default settings (or with the app's sizes file) on ``app``."""
    return _keys(app, _lint(app, False, sizes).hints)


# Once per application and settings in a process: the precision tests ask for the same run in
# several tests (and pytest may set their module fixture up again when xdist interleaves another
# module's tests with them); linting every application takes about half a minute.
@functools.cache
def _lint(app: App, preview: bool, sizes: bool) -> LintResult:
    root = fetch(app)
    config = LintConfig(root=root, preview=preview)
    if sizes:
        if not app.sizes:
            raise RuntimeError(f"{app.name}: no sizes file")
        config = dataclasses.replace(config, sizes=read_sizes_file(HERE / app.labels / app.sizes))
    result = lint_paths([str(root)], config)
    # A file no Python here parses (reviewboard's Python 2 ``docs/codebase/conf.py``) is the
    # application's own; a run where nothing could be checked is not.
    if not result.files_checked:
        raise RuntimeError(f"{app.name}: no file could be checked: {result.errors[:3]}")
    return result


def _keys(app: App, found: tuple[Finding, ...]) -> list[Key]:
    """Label keys of ``found``, each once: two findings of one rule on one line (two queries
    of one statement) are one line a reviewer labels, and one finding of the score."""
    root = app.root
    keys = [(Path(f.filename).relative_to(root).as_posix(), f.row, f.code) for f in found]
    return list(dict.fromkeys(keys))


@dataclass
class Score:
    """Labelled findings of one rule (or all): true, false, not labelled (counted false)."""

    true: int = 0
    false: int = 0
    unlabelled: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Findings reported."""
        return self.true + self.false + self.unlabelled

    @property
    def precision(self) -> float:
        """True findings over all findings (1.0 when there are none)."""
        return self.true / self.total if self.total else 1.0


@dataclass
class Report:
    """Scores per rule, overall, per app, and the labelled-true findings no longer reported."""

    by_rule: dict[str, Score]
    overall: Score
    by_app: dict[str, Score]
    held_out: Score
    missed_true: list[tuple[str, Key]]
    unlabelled: list[tuple[str, Key]]
    true_known: int = 0
    """Findings labelled true, of the applications scored, by any run (the recall's base)."""

    @property
    def recall(self) -> float:
        """The share of the findings labelled true that this run reports (1.0 with none)."""
        return self.overall.true / self.true_known if self.true_known else 1.0

    def failures(self) -> list[str]:
        """Targets missed, one line each."""
        out = []
        if self.overall.precision < OVERALL_TARGET:
            out.append(
                f"overall precision {self.overall.precision:.1%} < {OVERALL_TARGET:.0%} "
                f"({self.overall.true} of {self.overall.total})"
            )
        for code, score in sorted(self.by_rule.items()):
            if score.total >= RULE_MIN_FINDINGS and score.precision < RULE_TARGET:
                out.append(
                    f"{code} precision {score.precision:.1%} < {RULE_TARGET:.0%} "
                    f"({score.true} of {score.total})"
                )
        return out


def evaluate(
    chosen: list[App] | None = None, *, preview: bool = False, sizes: bool = False
) -> Report:
    """Lint every app (with its sizes file when ``sizes``) and score its findings against its
    labels."""
    by_rule: dict[str, Score] = {}
    overall = Score()
    by_app: dict[str, Score] = {}
    held = Score()
    missed: list[tuple[str, Key]] = []
    unlabelled: list[tuple[str, Key]] = []
    true_known = 0
    for app in chosen or apps():
        labels = load_labels(app)
        found = findings(app, preview=preview, sizes=sizes)
        true_known += sum(1 for key, label in labels.items() if label.verdict)
        app_score = by_app.setdefault(app.name, Score())
        for key in found:
            label = labels.get(key)
            scores = [by_rule.setdefault(key[2], Score()), overall, app_score]
            if app.held_out:
                scores.append(held)
            for score in scores:
                if label is None:
                    score.unlabelled += 1
                elif label.verdict:
                    score.true += 1
                else:
                    score.false += 1
            if label is None:
                unlabelled.append((app.name, key))
        seen = set(found)
        missed.extend(
            (app.name, key)
            for key, label in labels.items()
            if label.verdict and key not in seen and key[2] in DEFAULT_CODES
        )
    return Report(by_rule, overall, by_app, held, missed, unlabelled, true_known)


def table(report: Report) -> str:
    """The per-rule table README quotes (Markdown)."""
    lines = [
        "| rule | findings | true | false | unlabelled | precision |",
        "|---|---|---|---|---|---|",
    ]
    for code, score in sorted(report.by_rule.items()):
        lines.append(
            f"| {code} | {score.total} | {score.true} | {score.false} | {score.unlabelled} | "
            f"{score.precision:.0%} |"
        )
    o = report.overall
    lines.append(
        f"| **all** | {o.total} | {o.true} | {o.false} | {o.unlabelled} | **{o.precision:.1%}** |"
    )
    return "\n".join(lines)


def _todo(preview: bool, folder: str, sizes: bool) -> int:
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    for app in apps(folder):
        labels = load_labels(app)
        keys = findings(app, preview=preview)
        if sizes and app.sizes:
            keys += findings(app, sizes=True)
        for key in dict.fromkeys(keys):
            if key not in labels:
                writer.writerow([app.name, *key, "?", ""])
    return 0


def main(argv: list[str] | None = None) -> int:
    """``--todo``: unlabelled findings; default: the precision table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--todo", action="store_true", help="print findings with no label")
    parser.add_argument("--preview", action="store_true", help="with preview rules and variants")
    parser.add_argument("--unseen", action="store_true", help="the applications of unseen/")
    parser.add_argument("--heldout", action="store_true", help="the applications of heldout/")
    parser.add_argument(
        "--set", default="", help="the applications of this folder (heldout5: round 5)"
    )
    parser.add_argument("--sizes", action="store_true", help="with each app's sizes file")
    args = parser.parse_args(argv)
    folder = "unseen" if args.unseen else "heldout" if args.heldout else args.set
    if folder and not (HERE / folder / "apps.json").is_file():
        parser.error(f"--set {folder}: no {folder}/apps.json beside the suite")
    if args.todo:
        return _todo(args.preview, folder, args.sizes)
    chosen = [a for a in apps(folder) if a.sizes or not args.sizes]
    report = evaluate(chosen, preview=args.preview, sizes=args.sizes)
    if args.sizes:
        print(f"recall with sizes: {report.overall.true} of {report.true_known} true findings")
    if folder:
        for name, score in report.by_app.items():
            print(f"{name}: {score.true} of {score.total} true ({score.precision:.1%})")
    print(table(report))
    for line in report.failures():
        print("MISSED TARGET:", line)
    print(f"labelled true, no longer reported: {len(report.missed_true)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
