"""Ray glue only: the driver, the Researcher and NodeRunner actors, the evaluator, Ray Train, `trex bench`.

Importing it registers the built-in data (``spec/builtin.py``, filled by ``ftbench``) in every process
that runs runtime code: Ray unpickles an actor's class by importing its module, so each actor
process reads the same registry as the driver.
"""

import trex_ray.ftbench  # noqa: F401  (registers the built-in data)
