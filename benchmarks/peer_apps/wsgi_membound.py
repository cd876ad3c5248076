"""membound's recipe for gunicorn, the app side (``bench_peers.MEMBOUND["gunicorn"]``): the plain
app behind ``HealthMiddleware`` (``/health``, and 503 while work is refused), with a
``Watchdog(on_hard=actions.refuse_new_work())`` in every worker — started as the module is
imported, which gunicorn does in each worker after the fork (no ``--preload``)."""

from __future__ import annotations

from wsgi_app import application as app

import membound as mb
from membound.guard import HealthMiddleware, actions

watchdog = mb.Watchdog(on_hard=actions.refuse_new_work(), share_room=True).start()
application = HealthMiddleware(app)
