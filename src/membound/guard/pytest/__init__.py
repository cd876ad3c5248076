"""The pytest plugin: hooks (``plugin.py``), markers (``marks.py``), the ``membound`` fixture
(``fixture.py``), failure text (``failures.py``) and the ``--membound`` summary (``summary.py``).
"""
