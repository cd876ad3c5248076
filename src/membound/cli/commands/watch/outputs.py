"""What ``membound watch`` writes and serves: the ``--json`` summary, the ``--plot`` timeline and,
for ``--prometheus-port``, the watched process's figures (served by ``guard/prometheus/``)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from collections.abc import Iterator

import click

from membound._units import format_size
from membound.cli.commands.watch.errors import WatchError
from membound.cli.commands.watch.target import read_status, shorten
from membound.cli.commands.watch.view import Watch, counts
from membound.cli.output import writable_path

_MIB = float(2**20)


def plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    value = writable_path(ctx, param, value)
    if value is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("charts need matplotlib: pip install 'membound[plot]'")
    return value


def json_bytes(summary: dict[str, object]) -> bytes:
    doc = {"schema": "membound/1", "type": "watch", "result": summary}
    return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode()


def plot(watch: Watch) -> bytes:
    """A timeline PNG of the judged usage, with the thresholds that fall within its range."""
    from membound.report.chart import plot_timeline, pyplot

    plt = pyplot()
    dog = watch.dog
    timeline = watch.timeline()
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        plot_timeline(ax, timeline, f"usage ({counts(dog.limit)})")
        top = max(timeline.peak, 1.0)
        off = []
        for value, name, colour in (
            (dog.soft_bytes, "soft", "tab:orange"),
            (dog.hard_bytes, "hard", "tab:red"),
            (dog.limit.bytes, "limit", "black"),
        ):
            words = f"{name} {format_size(value)}"
            if value <= 1.5 * top:
                ax.axhline(value / _MIB, linestyle="--", linewidth=0.9, color=colour, label=words)
            else:
                off.append(words)
        who = f"pid {watch.target.pid}" + (f" {watch.target.label}" if watch.target.label else "")
        title = f"{shorten(who, 60)}: {dog.state}, {dog.verdict.pattern}"
        if off:
            title += f"\n(off the chart: {', '.join(off)})"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds since the watch started")
        ax.set_ylabel("usage as the limit counts it (MiB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=100)
        plt.close(fig)
    return png.getvalue()


# --- Prometheus ---------------------------------------------------------------------------------


def watched_report(watch: Watch) -> dict[str, object]:
    """The watched process's figures, in the keys of ``health()``."""
    dog = watch.dog
    usage = dog.usage
    # Before the first reading there is no usage: no sample, rather than a usage of 0.
    judged = usage.judged if usage is not None else None
    rss, hwm = read_status(watch.target.pid)
    verdict = dog.verdict
    return {
        "status": dog.state,
        "rss_bytes": rss if rss is not None else watch.rss,
        "peak_bytes": hwm if hwm is not None else watch.hwm,
        "anon_bytes": None if usage is None else usage.anon,
        "usage_bytes": judged,
        "page_cache_bytes": None if usage is None else usage.file,
        "limit_bytes": dog.limit.bytes,
        "limit_source": dog.limit.source,
        "limit_kind": dog.limit.kind,
        "headroom_bytes": None if judged is None else dog.limit.bytes - judged,
        "growth": {
            "pattern": verdict.pattern,
            "slope_bytes_per_s": verdict.slope_bytes_per_s,
            "time_to_limit_s": verdict.time_to_limit_s,
        },
        "watchdog": dog.snapshot(),
    }


@contextlib.contextmanager
def serve_metrics(port: int | None, watch: Watch) -> Iterator[int | None]:
    """Serve the watched process's metrics on 127.0.0.1:``port`` while the watch runs; yields
    the port served (``0`` picks a free one), or None without ``port``."""
    if port is None:
        yield None
        return
    try:
        from membound.guard.prometheus.collector import ReportCollector
        from membound.guard.prometheus.server import MetricsServer
    except ImportError:
        raise WatchError(
            "--prometheus-port needs prometheus_client: pip install 'membound[prometheus]'"
        ) from None
    # The watcher refuses no work of its own: that sample would speak of membound.
    collector = ReportCollector(
        lambda: watched_report(watch), leave_out=("membound_refusing_new_work",)
    )
    server = MetricsServer([collector], port)
    try:
        served = server.start()
    except OSError as exc:
        raise WatchError(
            f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield served
    finally:
        server.stop()
