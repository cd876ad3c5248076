"""Subcommands of ``membound``; each module exposes one click command named ``command``."""
