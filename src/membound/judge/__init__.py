"""judge: verdicts over plain numbers (growth over time, complexity, leaks, comparisons).

``complexity`` (``complexity``) with ``curves`` (the models and their fit), ``leaks``
(``find_leaks``) with ``isolated_leaks`` (the hunt in a fresh interpreter, whose child is
``_leaks_child``), ``retained`` (is growth kept?), ``chains`` (reference chains as people read
them) and ``leak_words`` (the verdict in words); ``compare`` (``compare``) and ``baseline`` (is
a run worse than its baseline?). The public names are exported by ``membound`` itself; this
package exports nothing of its own.
"""
