"""guard: the pytest plugin, the runtime watchdog and the health/Prometheus surface."""
