"""Ports for the servers the tests start (PostgreSQL, gunicorn, uvicorn, Redis, Prometheus).

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from the ephemeral range,
the same range every client connection's own end is taken from: between the test reading it
and its server binding it, a connection made by another test (or another xdist worker's server)
took the port ("could not bind IPv4 address: Address already in use", 21 PostgreSQL tests
in one CI run). Ports here come from below that range, a slice per xdist worker so that two
workers never hand out the same one, each handed out once per run and checked free when it is.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

#: Below the kernel's default ephemeral range (32768-60999) and above the well-known ports.
_LOW, _HIGH = 20000, 32000
#: Ports per xdist worker (up to eight workers fit below ``_HIGH``).
_SLICE = 1500


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) % 8 if digits.isdigit() else 0


def _ephemeral() -> range:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def _candidates() -> itertools.cycle[int]:
    start = _LOW + _worker_index() * _SLICE
    ports = list(range(start, start + _SLICE))
    # another suite run beside this one starts elsewhere in the slice
    offset = random.randrange(_SLICE)
    return itertools.cycle(ports[offset:] + ports[:offset])


_next = _candidates()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, outside the ephemeral range, and not handed out
    before in this worker's run."""
    ephemeral = _ephemeral()
    for _ in range(_SLICE):
        port = next(_next)
        if port in ephemeral:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))  # no SO_REUSEADDR: a port in TIME_WAIT is skipped
            except OSError:
                continue
        return port
    raise RuntimeError("no free port in this test worker's slice")
