"""Control groups and memory limits as the kernel keeps them: ``memory`` reads limits and usage
(cgroup v2 and v1, rlimits, RAM) for the guard and ``membound watch``; ``groups`` finds where a
process sits and makes a group for every measured run (the code the sampler process runs too).

It exports nothing: import ``membound.measure.cgroup.memory`` or ``.groups``.
"""
