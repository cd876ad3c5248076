"""Memory held near a limit, then threads started in bursts, with the Watchdog's backstop on.

``python backstop_threads.py HOLD_MIB``: holds ``HOLD_MIB`` MiB (written), starts a Watchdog
(``hard="85%"``, backstop on), then 100 threads at once and a 64-thread pool. Their stacks map
~1.3 GiB that is never touched; the backstop must let them through. Prints
``threads: started=<n> errors=<n> refusals=<n>``.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import membound as mb

held = [b"\x02" * (1 << 20) for _ in range(int(sys.argv[1]))]
dog = mb.Watchdog(hard="85%", on_soft=None, backstop=True).start()
time.sleep(0.3)
started = errors = 0
gate = threading.Event()
threads = [threading.Thread(target=gate.wait, args=(10,)) for _ in range(100)]
for thread in threads:
    try:
        thread.start()
        started += 1
    except RuntimeError:
        errors += 1
with ThreadPoolExecutor(64) as pool:
    try:
        started += len(list(pool.map(lambda _: time.sleep(0.05), range(64))))
    except RuntimeError:
        errors += 1
gate.set()
for thread in threads:
    if thread.ident is not None:
        thread.join()
assert dog.backstop is not None
print(f"threads: started={started} errors={errors} refusals={dog.backstop.refusals}", flush=True)
dog.stop()
