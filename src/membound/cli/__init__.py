"""The ``membound`` command line: ``main`` (the entry point, dispatch and exit codes), the
``commands`` package (one module per subcommand), and what the subcommands share: ``output``
(``--json``, ``--markdown``, ``--plot``, the printed result and live figures), ``baseline``
(``--write-baseline`` and ``--baseline``) and ``lint_sizes`` (where ``membound lint`` gets table
sizes). The entry point is ``membound.cli.main:main``; this package exports nothing of its own.
"""
