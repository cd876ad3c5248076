"""measure: probes, the out-of-process sampler, ``track`` and isolated runs.

Modules: ``probes`` (one reading of one memory figure), ``allocator`` (what this process's
allocators hold), ``heap`` (the Python heap: tracemalloc, live objects, reference chains),
``holders`` (the container that keeps a leak), ``sizeof`` (``deep_sizeof``, ``instance_size``),
``track`` (a block or a function in this process), ``inprocess`` (one call measured here),
``rounds`` (rounds of calls), ``interpreter`` (the interpreter a traced command runs behind a
wrapper or shim, and memray lent to it), ``loaded_level`` (what a Python command holds once
loaded: an idle interpreter with its imports), ``deadline`` (a time limit on work done here),
``target`` (what membound calls, here or in a fresh process), ``by_value`` (a notebook's objects
for a fresh interpreter), ``scenarios`` (``scenario`` and scenarios files), ``child_code`` (the
one loader of the child code). Deprecated path, kept for earlier guides: ``command`` (now
``isolate/command.py``).

Packages: ``cgroup`` (control groups and limits as the kernel keeps them), ``isolate`` (fresh
processes for measured runs), ``sampler`` (the out-of-process sampler), ``where`` (the lines that
held the memory). The folder ``children`` holds the standard-library-only child code, run by
path and never imported.

The package root names the public parts (imported on first use, ``membound/_lazy.py``); this
package imports nothing, so that importing one of its modules imports only what that one needs
(and ``membound/__init__.py`` imports it first to keep the name ``measure`` for the function).
"""
