"""The ``membound`` command line: one module per subcommand under ``cli/commands/``."""
