"""``health()``: one JSON-ready dict of where this process stands against its memory limit.

This process's part is ``guard/process_health.py`` (what the Prometheus exporters export), the
service's ``guard/service_health.py``. The fields are listed in :func:`health`'s docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from membound.guard.process_health import process_health
from membound.guard.watchdog.instances import current

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog

__all__ = ["health"]


def health(
    watchdog: Watchdog | None = None,
    scope: Literal["process", "service"] = "process",
) -> dict[str, object]:
    """Where this process stands against its memory limit, ready for ``json.dumps``.

    The fields (sizes in bytes as integers, times in seconds):

    * ``status``: what this process does, and what ``/health``'s code says: ``ok``/``soft``
      (200), ``hard`` or ``refusing`` (503: new work is refused while the state is below
      ``hard``, a refusal that has not ended yet or one the backstop began). Never ``ok`` while
      refusing.
    * ``state``: the watchdog's state (``ok``/``soft``/``hard``); without a running watchdog,
      the state that the default thresholds (80 % and 90 % of the limit) give for the usage now.
    * ``rss_bytes`` (this process's resident memory), ``anon_bytes`` (anonymous memory in what
      the limit counts: the cgroup's, or this process's), ``usage_bytes`` (the judged usage
      compared with the limit), ``page_cache_bytes``, ``peak_bytes`` (the process's ``VmHWM``),
      ``limit_bytes``/``limit_source``/``limit_kind`` and ``headroom_bytes`` (limit − usage).
      ``peak_bytes`` is the peak since the process started (or since a tool reset it), so it may
      stand far above today's usage: the watchdog judges current memory, never this.
    * ``pressure``: PSI ``some``/``full`` averages over 10, 60, 300 s (percentages), or null.
    * ``oom_kills``: the OOM killer's kills in the limit's cgroup, or null where not counted.
    * ``gc``: per generation, collections run, objects collected and uncollectable, and the
      allocations pending toward the next collection (``gc.get_count()``).
    * ``growth``: the leak trend (``pattern``, ``slope_bytes_per_s``, ``time_to_limit_s``);
      pattern ``unknown`` without a running watchdog or before its window filled.
    * ``pools``: name → stats of every ``BoundedPool`` and registered cache.
    * ``watchdog``: its state, thresholds, last transitions and callback counts, or null.
    * ``refusing``: True while new work is refused (``actions.refuse_new_work``).
    * ``group``: the cgroup whose figures these are (its directory), or null when the limit is
      no cgroup's.
    * ``per``: whose each figure is — ``process`` (this worker's alone: ``rss_bytes``,
      ``peak_bytes``, ``gc``, ``status``…), ``group`` (the cgroup's, the same in every process
      of it: ``usage_bytes``, ``anon_bytes``, ``page_cache_bytes``, ``headroom_bytes``,
      ``oom_kills``, ``growth``, the limit), ``machine`` (RAM, PSI outside a v2 group) or
      ``given`` (a limit the caller stated). Under gunicorn or ``uvicorn --workers`` in one
      container, the ``group`` figures are the whole service's, whichever worker answers.
    * ``service`` (only with ``scope="service"``): the whole service, every worker of the server
      and the leak trend judged per request across workers (``guard/service_health.py``):
      ``source`` (``ledger``, ``prometheus``, ``cgroup`` or ``process``), ``workers`` (pid,
      served, memory, state), ``usage_bytes``/``limit_bytes``/``headroom_bytes`` of the service,
      ``recycled`` and ``growth`` (``pattern``, ``bytes_per_request``, ``explanation``).

    Args:
        watchdog: the watchdog to report (default: the one started last in this process).
        scope: ``"service"`` adds the whole service (every worker of the server this process
            serves in) under ``service``.

    Raises:
        ValueError: ``scope`` is neither ``"process"`` nor ``"service"``.

    Returns:
        The dict of the fields above.
    """
    if scope not in ("process", "service"):
        raise ValueError(f"scope must be 'process' or 'service', got {scope!r}")
    dog = watchdog if watchdog is not None else current()
    report = process_health(dog)
    if scope == "service":
        from membound.guard.service_health import service_health  # the servers' modules

        report["service"] = service_health(dog)
    return report
