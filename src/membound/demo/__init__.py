"""The seed experiments as runnable scenarios for ``membound demo``: ``scenarios`` (standard
library only), ``batching`` (SQL batching), ``pipelines`` (read → clean → chunk → embed, as lists
and as generator stages) and ``objects`` (cycles, sessions, fan-out copies, record sizes) hold
the scenario functions; ``runner`` groups them, runs them and hands the results to the command
(``run_demo``). This package exports nothing of its own.
"""
