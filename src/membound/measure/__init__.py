"""measure: probes, the out-of-process sampler, ``track`` and isolated runs.

Submodules are imported by ``membound/__init__.py`` directly; this package imports nothing so that
the stdlib-only sampler child and the isolated-run child stay light.
"""
