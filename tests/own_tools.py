"""The suite's own tools' pytest plugins, left out of the pytest runs the tests start.

hypothesis's plugin imports all of hypothesis at every run's end (0.6 CPU-s per pytest process
started) and pytest-benchmark's costs 0.2 s; no test of membound needs them in the runs it
starts, and a user's environment does not have them because membound's suite does. Users'
plugins that meet membound's (pytest-memray, xdist, asyncio, anyio) stay loaded.
"""

#: For ``PYTEST_ADDOPTS``.
OWN_TOOL_PLUGINS = "-p no:hypothesispytest -p no:benchmark"
