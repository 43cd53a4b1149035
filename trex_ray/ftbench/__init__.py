"""Built-in benchmark tasks: offline generated data sets, their vocabulary and TaskSpecs.

Importing it registers the built-in data (``spec/builtin.py``) that ``execute`` and ``research`` read.

Example::

    >>> from trex_ray.ftbench import builtin_task, generate
    >>> task = builtin_task("reverse")
    >>> len(generate("reverse", "eval", n=5))
    5
"""

from __future__ import annotations

from trex_ray.ftbench import provide as _provide  # noqa: F401  (registers the built-in data: spec/builtin.py)
from trex_ray.ftbench.generators import generate, task_names
from trex_ray.ftbench.lexicon import builtin_vocabulary
from trex_ray.ftbench.registry import builtin_task, list_builtin_tasks

__all__ = ["builtin_task", "builtin_vocabulary", "generate", "list_builtin_tasks", "task_names"]
