"""Subcommands of ``membound``, one module each: ``run``, ``compare``, ``scale``, ``leaks``,
``lint``, ``demo``, ``report`` and the ``watch`` package. Each exposes one click command named
``command``, which ``membound.cli.main`` registers; this package exports nothing of its own.
"""
