"""The metrics server: ``/metrics`` of a registry of its own over HTTP, on 127.0.0.1 only,
started and stopped with the run it serves (``membound watch --prometheus-port``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.registry import Collector

__all__ = ["MetricsServer", "check_port"]


def check_port(port: int) -> None:
    """Bind 127.0.0.1:``port`` for a moment, as :meth:`MetricsServer.start` will, so that a
    run can be refused before it starts.

    Raises:
        OSError: the port cannot be bound (taken, or not ours to take).
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        probe.bind(("127.0.0.1", port))


class MetricsServer:
    """prometheus_client's HTTP server of ``collectors``' metrics, on 127.0.0.1 only.

    Args:
        collectors: what a scrape reads, registered in a registry of the server's own (without
            a ``describe``, nothing is read before the first scrape).
        port: the port to listen on; 0 picks a free one (:attr:`port` says which once started).
    """

    def __init__(self, collectors: Iterable[Collector], port: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            self.registry.register(collector)
        self.port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen, and answer scrapes from a daemon thread; returns the port served.

        Raises:
            OSError: the port cannot be bound (taken, or not ours to take).
        """
        server, thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._server, self._thread = server, thread
        self.port = int(server.server_address[1])
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, and wait up to ``timeout`` seconds for the thread to end."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout)
