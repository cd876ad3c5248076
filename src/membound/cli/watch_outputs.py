"""What ``membound watch`` writes and serves: the ``--json`` summary, the ``--plot`` timeline and
the ``--prometheus-port`` metrics server (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
from collections.abc import Iterable, Iterator

import click

from membound._units import format_size
from membound.cli._output import _writable
from membound.cli.watch_errors import WatchError
from membound.cli.watch_target import _shorten, _status
from membound.cli.watch_view import _counts, _Watch

_STATE_NUMBER = {"ok": 0, "soft": 1, "hard": 2}
_MIB = float(2**20)


def _plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    value = _writable(ctx, param, value)
    if value is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("charts need matplotlib: pip install 'membound[plot]'")
    return value


def _json_bytes(summary: dict[str, object]) -> bytes:
    doc = {"schema": "membound/1", "type": "watch", "result": summary}
    return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode()


def _plot(watch: _Watch) -> bytes:
    """A timeline PNG of the judged usage, with the thresholds that fall within its range."""
    from membound.report.chart import _plot_timeline, _pyplot

    plt = _pyplot()
    dog = watch.dog
    timeline = watch.timeline()
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _plot_timeline(ax, timeline, f"usage ({_counts(dog.limit)})")
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
        title = f"{_shorten(who, 60)}: {dog.state}, {dog.verdict.pattern}"
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


@contextlib.contextmanager
def _metrics(port: int | None, watch: _Watch) -> Iterator[int | None]:
    """Serve the watched process's metrics on 127.0.0.1:``port`` while the watch runs; yields
    the port served (``0`` picks a free one), or None without ``port``."""
    if port is None:
        yield None
        return
    try:
        import prometheus_client
        from prometheus_client.core import GaugeMetricFamily, Metric
        from prometheus_client.registry import CollectorRegistry
    except ImportError:
        raise WatchError(
            "--prometheus-port needs prometheus_client: pip install 'membound[prometheus]'"
        ) from None

    class _Collector:
        def collect(self) -> Iterable[Metric]:
            dog = watch.dog
            usage = dog.usage
            judged = usage.judged if usage is not None else 0
            rss, hwm = _status(watch.target.pid)
            rss = rss if rss is not None else watch.rss
            hwm = hwm if hwm is not None else watch.hwm
            limit = dog.limit
            verdict = dog.verdict

            def gauge(name: str, text: str, value: float | None) -> GaugeMetricFamily:
                return GaugeMetricFamily(name, text, value=math.nan if value is None else value)

            yield gauge(
                "membound_memory_rss_bytes", "Resident memory of the process (VmRSS), bytes.", rss
            )
            yield gauge(
                "membound_memory_peak_bytes",
                "Peak resident memory of the process (VmHWM), bytes.",
                hwm,
            )
            yield gauge(
                "membound_memory_usage_bytes",
                f"Memory as the limit counts it ({_counts(limit)}), bytes.",
                judged,
            )
            yield gauge(
                "membound_memory_anon_bytes",
                "Anonymous memory that the limit counts, bytes.",
                None if usage is None else usage.anon,
            )
            yield gauge(
                "membound_memory_page_cache_bytes",
                "Page cache (or file-backed RSS), bytes.",
                None if usage is None else usage.file,
            )
            family = GaugeMetricFamily(
                "membound_memory_limit_bytes",
                "The memory limit the watched process is judged against.",
                labels=["source", "kind"],
            )
            family.add_metric([limit.source, limit.kind], limit.bytes)
            yield family
            yield gauge(
                "membound_memory_headroom_bytes", "The limit less the usage.", limit.bytes - judged
            )
            yield gauge(
                "membound_watchdog_state",
                "The watchdog's state: 0 ok, 1 soft, 2 hard.",
                _STATE_NUMBER[dog.state],
            )
            thresholds = GaugeMetricFamily(
                "membound_watchdog_threshold_bytes",
                "The watchdog's thresholds.",
                labels=["threshold"],
            )
            for name, value in (
                ("soft", dog.soft_bytes),
                ("hard", dog.hard_bytes),
                ("recover", dog.recover_bytes),
            ):
                thresholds.add_metric([name], value)
            yield thresholds
            # NaN while there is nothing to say, as guard/prometheus.py does.
            known = verdict.pattern != "unknown"
            yield gauge(
                "membound_growth_bytes_per_second",
                "Slope of the floor of memory over the leak window; NaN when unknown.",
                verdict.slope_bytes_per_s if known else None,
            )
            yield gauge(
                "membound_time_to_limit_seconds",
                "Seconds until the limit at that slope; NaN when unknown or not rising.",
                verdict.time_to_limit_s,
            )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    try:
        server, thread = prometheus_client.start_http_server(
            port, addr="127.0.0.1", registry=registry
        )
    except OSError as exc:
        raise WatchError(
            f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
