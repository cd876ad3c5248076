"""bound: building blocks that keep batch work in O(1) memory. It stands alone: of the rest of
membound it imports only the base (``_units``, ``_errors``, ``_proc``, ``_data_cap``).

``iterables`` (``batched``, ``read_chunks``, ``read_lines``, ``pipeline``), ``kv``
(``lmdb_batches``), ``pool`` (``BoundedPool``), ``release`` (``release_memory``) and ``budget``
(``memory_budget``, through the soft ``RLIMIT_DATA`` it shares with the watchdog's backstop,
``_data_cap``); ``_rss`` reads this process's memory for them. The ``sql`` package holds
keyset batches, the batch writer and partitioned runs. The public names are exported by
``membound`` itself; this package exports nothing of its own.
"""
