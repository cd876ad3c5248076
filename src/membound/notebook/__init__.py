"""notebook: membound where people work, as IPython/Jupyter magics (``%load_ext membound``).

``magics.py`` holds the magics; ``variants.py`` turns a ``%%membound_compare`` cell into
scenarios that run in fresh processes, with the notebook's names shipped by value. This part sits
at the top of the house beside ``cli`` (DESIGN §2): it uses ``measure``, ``judge`` and
``report`` and nothing imports it but :func:`membound.load_ipython_extension`.
"""

from __future__ import annotations
