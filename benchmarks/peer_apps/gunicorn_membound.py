"""membound's recipe for gunicorn (``bench_peers.MEMBOUND["gunicorn"]``), the ``gunicorn.conf.py``
of docs/guides/service-leaks.md: ``GunicornRecycler``'s hooks, ``hard`` as the benchmark's
recipe gives it (``PEERS_MEMBOUND_HARD``). The app it serves is ``wsgi_membound.py``."""

from __future__ import annotations

import os

from membound.guard import GunicornRecycler

recycler = GunicornRecycler(hard=os.environ["PEERS_MEMBOUND_HARD"])
post_worker_init = recycler.post_worker_init
post_request = recycler.post_request
on_exit = recycler.on_exit
