"""membound's recipe for ``uvicorn --workers`` (``bench_peers.MEMBOUND["uvicorn"]``), as
docs/guides/service-leaks.md gives it: the plain app wrapped, outermost,
``ASGIRecycler(ASGIHealthMiddleware(app), hard=…, grace=30)`` (``hard`` from
``PEERS_MEMBOUND_HARD``), with a ``Watchdog(on_hard=actions.refuse_new_work(),
share_room=True)`` in every worker — started as the module is imported, which uvicorn does
in each worker process."""

from __future__ import annotations

import os

from asgi_app import application as app

import membound as mb
from membound.guard import ASGIHealthMiddleware, ASGIRecycler, actions

watchdog = mb.Watchdog(on_hard=actions.refuse_new_work(), share_room=True).start()
application = ASGIRecycler(
    ASGIHealthMiddleware(app), hard=os.environ["PEERS_MEMBOUND_HARD"], grace=30
)
