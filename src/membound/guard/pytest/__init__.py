"""The pytest plugin: hooks (``plugin``, the ``pytest11`` entry point), markers (``marks``), the
``membound`` fixture (``fixture``), one more run of a test's call (``runs``), failure text
(``failures``), the ``--membound`` summary (``summary``), baselines across commits
(``baseline``) and sharing ``limit_memory`` with pytest-memray (``memray_plugin``). pytest
loads the plugin by its entry point; this package exports nothing of its own.
"""
